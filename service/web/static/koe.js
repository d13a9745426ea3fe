// koe dashboard: drag-and-drop upload with a dry run in place, and job progress polling.
// No framework, no network beyond this server. Server-rendered HTML fragments are inserted as they come
// (Jinja2 escapes every user value); nothing here builds HTML from user text.
"use strict";

(function () {
  // Without JavaScript the upload page is two plain forms (file -> preview page -> start). With it, the file
  // can be dropped and the preview arrives as a fragment; its form still posts as a plain form.
  function enhance() {
    document.querySelectorAll("[data-js-only]").forEach(function (el) { el.hidden = false; });
    document.querySelectorAll("[data-no-js]").forEach(function (el) { el.hidden = true; });
  }

  function upload() {
    var form = document.getElementById("upload-form");
    if (!form) return;
    var input = document.getElementById("file");
    var drop = document.getElementById("drop");
    var preview = document.getElementById("preview");
    var chosen = null;

    function dryRun() {
      var data = new FormData(form);
      data.set("file", chosen, chosen.name);
      preview.textContent = "ファイルを確認しています…";
      fetch(form.action, { method: "POST", body: data, credentials: "same-origin", headers: { "X-Fragment": "1" } })
        .then(function (r) { return r.text(); })
        .then(function (html) { preview.innerHTML = html; })
        .catch(function (e) { preview.textContent = "送信できませんでした: " + e; });
    }

    function pick(file) {
      if (!file) return;
      chosen = file;
      document.getElementById("file-name").textContent = file.name + "（" + Math.ceil(file.size / 1024) + " KB）";
      dryRun();
    }

    input.addEventListener("change", function () { pick(input.files[0]); });
    ["encoding", "kind", "metric"].forEach(function (id) {
      document.getElementById(id).addEventListener("change", function () { if (chosen) dryRun(); });
    });
    ["dragenter", "dragover"].forEach(function (t) {
      drop.addEventListener(t, function (e) { e.preventDefault(); drop.classList.add("over"); });
    });
    ["dragleave", "drop"].forEach(function (t) {
      drop.addEventListener(t, function (e) { e.preventDefault(); drop.classList.remove("over"); });
    });
    drop.addEventListener("drop", function (e) { pick(e.dataTransfer.files[0]); });
    // one start per preview: the mapping form is inserted later, so listen on the container
    preview.addEventListener("submit", function () {
      var start = document.getElementById("start");
      if (start) setTimeout(function () { start.disabled = true; start.textContent = "アップロード中…"; }, 0);
    });
  }

  function progress() {
    var box = document.getElementById("job");
    if (!box) return;
    var bar = document.getElementById("job-progress");
    function tick() {
      fetch(box.dataset.statusUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (r) { return r.json(); })
        .then(function (job) {
          bar.value = job.percent;
          bar.textContent = job.percent + "%";
          document.getElementById("job-percent").textContent = job.percent + "%";
          document.getElementById("job-state").textContent = job.state_label;
          document.getElementById("job-rows").textContent = job.rows_done;
          document.getElementById("job-total").textContent = job.rows_total || "?";
          document.getElementById("job-eta").textContent = job.eta_seconds ? "残り約 " + Math.ceil(job.eta_seconds) + " 秒" : "";
          if (job.state === "succeeded") {
            box.dataset.state = "succeeded";
            document.getElementById("job-done").hidden = false;
            return;
          }
          if (job.state === "failed") {
            box.dataset.state = "failed";
            document.getElementById("job-error").textContent = (job.error && (job.error.message || job.error.detail)) || "分析に失敗しました";
            return;
          }
          setTimeout(tick, 700);
        })
        .catch(function () { setTimeout(tick, 2000); });
    }
    tick();
  }

  document.addEventListener("DOMContentLoaded", function () { enhance(); upload(); progress(); });
})();
