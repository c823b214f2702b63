// Give each rich-text editor (django-prose-editor) the accessible name and
// description of the textarea it replaces: its label ("Body") and help text.
// Without this, screen readers announce an unnamed text box.
(function () {
  function label(textarea, editable) {
    if (!textarea || !editable || editable.hasAttribute("aria-label")) return;
    var element = textarea.id && document.querySelector('label[for="' + textarea.id + '"]');
    if (element) editable.setAttribute("aria-label", element.textContent.replace(/:\s*$/, "").trim());
    var help = textarea.getAttribute("aria-describedby");
    if (help) editable.setAttribute("aria-describedby", help);
  }
  document.addEventListener("prose-editor:ready", function (event) {
    label(event.detail.textarea, event.detail.editor.view.dom);
  });
})();
