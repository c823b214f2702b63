// Preselect the browser's own time zone in the signup form's zone choice,
// once: the reader can still pick another before sending the form. Without
// JavaScript the server's default zone stays selected.
document.querySelectorAll("select[data-detect-time-zone]").forEach(function (select) {
  try {
    var zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    if (zone && select.querySelector('option[value="' + zone + '"]')) select.value = zone;
  } catch (error) {
    // An old browser without Intl: the server's default zone stays.
  }
});
