// Send the CSRF token with every htmx request (Flask-WTF reads X-CSRFToken).
document.addEventListener("htmx:configRequest", function (event) {
  var meta = document.querySelector('meta[name="csrf-token"]');
  if (meta) { event.detail.headers["X-CSRFToken"] = meta.getAttribute("content"); }
});
// Show a Chinese error in place instead of leaving a blank panel when a request fails.
document.addEventListener("htmx:responseError", function (event) {
  var target = event.detail.target;
  var xhr = event.detail.xhr;
  if (target && xhr && xhr.responseText) { target.innerHTML = xhr.responseText; }
});
document.addEventListener("htmx:sendError", function (event) {
  var target = event.detail.target;
  if (target) { target.innerHTML = '<div class="flash flash-error" role="alert">网络错误：无法连接服务器，请稍后重试。</div>'; }
});
// On a narrow screen the link panel sits below the whole chain map: when a tile fills it (htmx), or a link's own URL
// is opened, bring it into view; beside the map (wide screens) it is already in view and nothing moves.
function showLinkPanel(panel) {
  var top = panel.getBoundingClientRect().top;
  if (top < 0 || top > window.innerHeight * 0.6) { panel.scrollIntoView({ block: "start" }); }
}
document.addEventListener("htmx:afterSwap", function (event) {
  var target = event.detail.target;
  if (target && target.id === "link-panel") { showLinkPanel(target); }
});
document.addEventListener("DOMContentLoaded", function () {
  var panel = document.getElementById("link-panel");
  if (panel && panel.querySelector("h2")) { showLinkPanel(panel); }
});
