// koe dashboard: drag-and-drop upload with a dry run, mapping dropdowns, and job progress polling.
// No framework, no network beyond this server. Server-rendered HTML fragments are inserted as they come
// (Jinja2 escapes every user value); nothing here builds HTML from user text.
"use strict";

(function () {
  function upload() {
    var form = document.getElementById("upload-form");
    if (!form) return;
    var csrf = form.dataset.csrf;
    var input = document.getElementById("file");
    var drop = document.getElementById("drop");
    var preview = document.getElementById("preview");
    var chosen = null;

    function mapping() {
      var m = { texts: [], segments: [] };
      document.querySelectorAll("select.role").forEach(function (sel) {
        var col = sel.dataset.column, role = sel.value;
        if (role === "texts" || role === "segments") m[role].push(col);
        else if (role !== "ignore") m[role] = col;
      });
      return m;
    }

    function body(withMapping) {
      var data = new FormData();
      data.append("file", chosen, chosen.name);
      data.append("csrf_token", csrf);
      var enc = document.getElementById("encoding").value;
      if (enc) data.append("encoding", enc);
      if (withMapping) data.append("mapping", JSON.stringify(mapping()));
      return data;
    }

    function dryRun() {
      preview.textContent = "ファイルを確認しています…";
      fetch("/app/upload/preview", { method: "POST", body: body(false), credentials: "same-origin" })
        .then(function (r) { return r.text(); })
        .then(function (html) {
          preview.innerHTML = html;
          var start = document.getElementById("start");
          if (start) start.addEventListener("click", run);
        })
        .catch(function (e) { preview.textContent = "送信できませんでした: " + e; });
    }

    function run() {
      var start = document.getElementById("start");
      start.disabled = true;
      start.textContent = "アップロード中…";
      fetch("/app/upload", {
        method: "POST", body: body(true), credentials: "same-origin", headers: { Accept: "application/json" }
      })
        .then(function (r) { return r.json(); })
        .then(function (res) {
          if (res.url) { window.location.assign(res.url); return; }
          document.getElementById("upload-error").textContent = res.error || "アップロードに失敗しました";
          start.disabled = false;
          start.textContent = "この設定で分析を開始";
        });
    }

    function pick(file) {
      if (!file) return;
      chosen = file;
      document.getElementById("file-name").textContent = file.name + "（" + Math.ceil(file.size / 1024) + " KB）";
      dryRun();
    }

    input.addEventListener("change", function () { pick(input.files[0]); });
    document.getElementById("encoding").addEventListener("change", function () { if (chosen) dryRun(); });
    ["dragenter", "dragover"].forEach(function (t) {
      drop.addEventListener(t, function (e) { e.preventDefault(); drop.classList.add("over"); });
    });
    ["dragleave", "drop"].forEach(function (t) {
      drop.addEventListener(t, function (e) { e.preventDefault(); drop.classList.remove("over"); });
    });
    drop.addEventListener("drop", function (e) { pick(e.dataTransfer.files[0]); });
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

  document.addEventListener("DOMContentLoaded", function () { upload(); progress(); });
})();
