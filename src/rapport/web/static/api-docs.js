// Starts Swagger UI on /api/docs (kept out of the page so the CSP needs no inline script).
(function () {
  "use strict";
  var root = document.getElementById("api-docs");
  window.SwaggerUIBundle({
    url: root.getAttribute("data-spec"),
    domNode: root,
    deepLinking: true,
    persistAuthorization: false,
    tryItOutEnabled: true,
  });
})();
