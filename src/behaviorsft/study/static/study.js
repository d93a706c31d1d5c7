/* behaviorsft study: the little behaviour the pages need (no inline scripts: CSP).
 * - scroll the conversation to the task's first turn;
 * - the proactivity slider counts only once touched (hidden input stays "" until then);
 * - ranking: SortableJS drag and drop, with up/down buttons as the keyboard fallback;
 *   any move ticks "This is my ranking";
 * - after a background (htmx) save, say so; say so too when it failed.
 */
(function () {
  "use strict";

  function changed(el) {
    el.dispatchEvent(new Event("change", { bubbles: true }));
  }

  function scrollConversation() {
    var conv = document.getElementById("conversation");
    if (!conv) return;
    var start = conv.getAttribute("data-scroll-to");
    var box = document.getElementById("turns");
    var turn = start !== "" ? document.getElementById("turn-" + start) : null;
    if (box && turn) box.scrollTop = turn.offsetTop - box.offsetTop;
  }

  function setupSlider() {
    var slider = document.getElementById("proactivity-slider");
    var hidden = document.getElementById("proactivity");
    var out = document.getElementById("proactivity-value");
    var clear = document.getElementById("proactivity-clear");
    if (!slider || !hidden) return;
    function touch(ev) {
      var before = hidden.value;
      hidden.value = Number(slider.value).toFixed(2);
      out.textContent = hidden.value;
      slider.classList.remove("unset");
      // A click on the thumb where it already sits (0.50 at first) changes no value,
      // so no change event comes: send one, or the background save would miss it.
      if (ev.type === "click" && before !== hidden.value) changed(hidden);
    }
    slider.addEventListener("input", touch);
    slider.addEventListener("change", touch);
    slider.addEventListener("click", touch);
    if (clear) {
      clear.addEventListener("click", function () {
        hidden.value = "";
        out.textContent = "not set";
        slider.classList.add("unset");
        changed(hidden);
      });
    }
  }

  function setupRanking() {
    var list = document.getElementById("ranking");
    var confirmBox = document.getElementById("ranked");
    if (!list) return;
    function moved() {
      if (confirmBox) confirmBox.checked = true;
      changed(confirmBox || list);
    }
    if (window.Sortable) {
      window.Sortable.create(list, { animation: 150, onEnd: moved });
    }
    list.addEventListener("click", function (ev) {
      var btn = ev.target.closest("button");
      if (!btn) return;
      var item = btn.closest("li");
      if (btn.classList.contains("rank-up") && item.previousElementSibling) {
        list.insertBefore(item, item.previousElementSibling);
      } else if (btn.classList.contains("rank-down") && item.nextElementSibling) {
        list.insertBefore(item.nextElementSibling, item);
      } else {
        return;
      }
      btn.focus();
      moved();
    });
  }

  function setupStatus() {
    var status = document.getElementById("autosave-status");
    if (!status) return;
    document.body.addEventListener("htmx:responseError", function (ev) {
      var code = ev.detail.xhr ? ev.detail.xhr.status : "?";
      var text = ev.detail.xhr ? ev.detail.xhr.responseText : "";
      status.textContent = text || "Not saved (HTTP " + code + "): reload the page";
      status.classList.add("error");
    });
    document.body.addEventListener("htmx:sendError", function () {
      status.textContent = "Not saved: the server cannot be reached";
      status.classList.add("error");
    });
    document.body.addEventListener("htmx:afterSwap", function () {
      status.classList.remove("error");
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    scrollConversation();
    setupSlider();
    setupRanking();
    setupStatus();
  });
})();
