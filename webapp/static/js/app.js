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
