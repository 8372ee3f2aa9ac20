"use strict";
// Starts Swagger UI (from the swagger-ui-bundle package, served by the app) on
// the app's own OpenAPI document. A file of its own: the CSP allows no inline script.
(() => {
  const root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.dataset.url,
    domNode: root,
    deepLinking: true,
    // Swagger UI would otherwise fetch its badge from a third-party validator.
    validatorUrl: null,
  });
})();
