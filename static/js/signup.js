// Fill the time zone field with the browser's own zone, once, if the reader
// has not typed one: they can still edit it before sending the form.
document.querySelectorAll("input[data-detect-time-zone]").forEach(function (input) {
  if (input.dataset.edited) return;
  try {
    var zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    if (zone) input.value = zone;
  } catch (error) {
    // An old browser without Intl: the server's default zone stays.
  }
});
