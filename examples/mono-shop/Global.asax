<%@ Application Language="C#" %>
<script runat="server">
  // Mono's thread pool starts with one thread per core and adds about two a second: with 2 cores,
  // twenty 2 s requests (Slow.aspx) took 7.4 s and queued every other page behind them. Pages
  // that block need threads ready.
  void Application_Start(object sender, EventArgs e) {
    System.Threading.ThreadPool.SetMinThreads(64, 64);
  }

  // Into the app's log (stdout and stderr go to .switchyard/app.log): what failed, and why the
  // application ended (a recycle serves nothing while it restarts).
  void Application_Error(object sender, EventArgs e) {
    Console.Error.WriteLine("mono-shop: " + Request.RawUrl + ": " + Server.GetLastError());
  }

  void Application_End(object sender, EventArgs e) {
    Console.Error.WriteLine("mono-shop: application ended: " + System.Web.Hosting.HostingEnvironment.ShutdownReason);
  }
</script>
