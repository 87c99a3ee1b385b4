<%@ Page Language="C#" %><%@ Import Namespace="System.Configuration" %><%-- The health check's page: ok once the app runs and its Web.config reads (a broken one is a 500). --%><%
  Response.ContentType = "text/plain";
%>ok <%= ConfigurationManager.AppSettings["Environment"] %>
