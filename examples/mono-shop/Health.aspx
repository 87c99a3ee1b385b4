<%@ Page Language="C#" %><%@ Import Namespace="System.Configuration" %><%-- The health check's page: ok once the app runs and its Web.config reads (a broken one is a 500). --%><%
  // Compiled before the switch, not on their first request under load: the health check is the
  // last thing before the release goes live, so it warms the pages up.
  System.Web.Compilation.BuildManager.GetCompiledType("~/Default.aspx");
  System.Web.Compilation.BuildManager.GetCompiledType("~/Slow.aspx");
  Response.ContentType = "text/plain";
%>ok <%= ConfigurationManager.AppSettings["Environment"] %>
