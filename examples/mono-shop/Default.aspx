<%@ Page Language="C#" %>
<%@ Import Namespace="System.Configuration" %>
<%@ Import Namespace="System.Text.RegularExpressions" %>
<script runat="server">
  // What the shop was given: the release it runs (switchyard's SWITCHYARD_RELEASE) and its
  // Web.config values. The password of the connection string is never shown, only its length.
  static string Setting(string key) { return ConfigurationManager.AppSettings[key] ?? "(none)"; }
  static string Shop() {
    var cs = ConfigurationManager.ConnectionStrings["Shop"];
    if (cs == null) return "(none)";
    return Regex.Replace(cs.ConnectionString, "Password=([^;]*)", m => "Password=(" + m.Groups[1].Value.Length + " characters)");
  }
</script><% Response.ContentType = "text/plain"; %>release=<%= Environment.GetEnvironmentVariable("SWITCHYARD_RELEASE") ?? "dev" %>
environment=<%= Setting("Environment") %>
greeting=<%= Setting("Greeting") %>
node=<%= Setting("Node") %>
currency=<%= Setting("Currency") %>
shop=<%= Shop() %>
path_info=<%= Request.PathInfo %>
