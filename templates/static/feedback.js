// One tap: opening a "more / less like this" link in a browser records the judgement at once, by submitting the
// page's own form (a same-origin POST with its CSRF token). A mail scanner that only fetches the link runs no
// script and records nothing; without JavaScript the button does the same.
(function () {
  var form = document.querySelector("form[data-auto-submit]");
  if (!form || form.dataset.sent) return;
  form.dataset.sent = "yes";
  var saving = document.querySelector("[data-saving]");
  if (saving) saving.hidden = false;
  form.hidden = true;
  form.submit();
})();
