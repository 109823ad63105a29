// Pre-selects the browser's time zone in a <select data-detect="yes">; without JavaScript the select still works.
(function () {
  var select = document.querySelector('select[name="timezone"][data-detect="yes"]');
  if (!select || !window.Intl) return;
  var zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  if (!zone) return;
  var found = Array.prototype.some.call(select.options, function (o) { return o.value === zone; });
  if (!found) {
    var option = document.createElement("option");
    option.value = zone;
    option.textContent = zone;
    select.insertBefore(option, select.firstChild);
  }
  select.value = zone;
})();
