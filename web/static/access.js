"use strict";
// The key form (POST /session) and the sign-out button (DELETE /session).
// Both reload the page, which the server renders for the new state.
(() => {
  const form = document.getElementById("key-form");
  const signOut = document.getElementById("sign-out");
  if (form) {
    const error = document.getElementById("key-error");
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      error.hidden = true;
      try {
        const response = await fetch("/session", {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ key: form.elements.key.value }),
        });
        if (!response.ok) throw new Error((await response.json()).error || response.statusText);
        window.location.reload();
      } catch (problem) {
        error.textContent = `Not signed in: ${problem.message}`;
        error.hidden = false;
      }
    });
  }
  if (signOut) {
    signOut.addEventListener("click", async () => {
      await fetch("/session", { method: "DELETE" });
      window.location.reload();
    });
  }
})();
