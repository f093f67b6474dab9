// mlflow-hitl pages: keyboard shortcuts only; every action is a plain form POST that works without this file.
// A key pressed while typing in a field is left alone. Buttons name their key in data-key.
(function () {
  "use strict";
  function typing(target) {
    // A ticked check box is not typing: the answer's key still works after choosing reasons.
    var text = target && target.tagName === "INPUT" && target.type !== "checkbox";
    return target && (target.tagName === "TEXTAREA" || text || target.isContentEditable);
  }
  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey || typing(event.target)) {
      return;
    }
    var button = document.querySelector('[data-key="' + CSS.escape(event.key) + '"]');
    if (button && !button.disabled) {
      event.preventDefault();
      button.click();
    } else if (event.key === "c") {
      var comment = document.querySelector("[data-comment]");
      if (comment) {
        event.preventDefault();
        comment.focus();
      }
    }
  });
})();
