<%@ Application Language="C#" %>
<script runat="server">
  // Mono's thread pool starts with one thread per core and adds about two a second: with 2 cores,
  // twenty 2 s requests (Slow.aspx) took 7.4 s and queued every other page behind them. Pages
  // that block need threads ready.
  void Application_Start(object sender, EventArgs e) {
    System.Threading.ThreadPool.SetMinThreads(64, 64);
  }
</script>
