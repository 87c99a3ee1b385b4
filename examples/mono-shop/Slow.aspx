<%@ Page Language="C#" %><%-- For drain tests: answers after 2 s, so a request is still in flight when its release is retired. --%><%
  System.Threading.Thread.Sleep(2000);
  Response.ContentType = "text/plain";
%>slow from release <%= Environment.GetEnvironmentVariable("SWITCHYARD_RELEASE") ?? "dev" %>
