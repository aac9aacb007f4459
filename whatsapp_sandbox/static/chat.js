// Customer chat page of the WhatsApp sandbox. Everything shown comes from the sandbox's JSON
// API; message content is untrusted, so it is only ever inserted as text (never as HTML).
"use strict";

const api = "/sandbox/api";
const el = (id) => document.getElementById(id);
let chat = null; // {waId (a phone, or the BSUID of a customer without one), profileName, username, lastSeq}
const PHONE = /^\d{7,15}$/;
const BSUID = /^[A-Z]{2}\.(?:ENT\.)?[A-Za-z0-9]{1,128}$/;
let generation = 0;

function node(tag, className, text) {
  const element = document.createElement(tag);
  if (className) element.className = className;
  if (text !== undefined && text !== null) element.textContent = String(text);
  return element;
}

function notice(text) {
  el("notice").textContent = text || "";
}

function timeOf(seconds) {
  return new Date(seconds * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

function isWebLink(value) {
  try {
    const url = new URL(String(value));
    return url.protocol === "http:" || url.protocol === "https:";
  } catch (_) {
    return false;
  }
}

function customerText(message) {
  const content = message.content || {};
  switch (message.type) {
    case "text":
      return content.text && content.text.body;
    case "interactive": {
      const interactive = content.interactive || {};
      const reply = interactive.button_reply || interactive.list_reply || {};
      return reply.title;
    }
    default: {
      const media = content[message.type] || {};
      return `[${message.type}]${media.caption ? " " + media.caption : ""}`;
    }
  }
}

function renderBusiness(bubble, message) {
  const content = message.content || {};
  if (message.type === "text") {
    bubble.append(node("span", "", (content.text || {}).body));
  } else if (message.type === "interactive") {
    const interactive = content.interactive || {};
    bubble.append(node("span", "", (interactive.body || {}).text));
    const choices = node("div", "choices");
    const action = interactive.action || {};
    if (interactive.type === "button") {
      for (const button of action.buttons || []) {
        const reply = button.reply || {};
        const tap = node("button", "", reply.title);
        tap.type = "button";
        tap.addEventListener("click", () => {
          sendReply("button_reply", reply.id, reply.title, message.id);
          for (const other of choices.querySelectorAll("button")) other.disabled = true;
        });
        choices.append(tap);
      }
    } else if (interactive.type === "list") {
      const open = node("button", "", "☰ " + (action.button || "Choose"));
      open.type = "button";
      open.addEventListener("click", () => openList(action, message.id));
      choices.append(open);
    }
    bubble.append(choices);
  } else if (message.type === "image") {
    const image = content.image || {};
    const source = isWebLink(image.link) ? image.link : image.id ? `${api}/media/${encodeURIComponent(image.id)}` : null;
    if (source) {  // sent by id: the file the business uploaded (whatsapp_sandbox/media.py)
      const img = node("img", "sent-image");
      img.alt = image.caption || "image";
      img.src = source;
      bubble.append(img);
    } else {
      bubble.append(node("span", "", "[image]"));
    }
    if (image.caption) bubble.append(node("span", "", image.caption));
  } else if (message.type === "document") {
    const doc = content.document || {};
    const link = node("a", "sent-document", `Document: ${doc.filename || "document"}`);
    link.href = doc.id ? `${api}/media/${encodeURIComponent(doc.id)}` : (isWebLink(doc.link) ? doc.link : "#");
    link.target = "_blank";
    link.rel = "noopener";
    bubble.append(link);
    if (doc.caption) bubble.append(node("span", "", doc.caption));
  } else if (message.type === "template") {
    // The approved body with its parameters, as the phone shows it (whatsapp_sandbox/window.py).
    bubble.append(node("span", "", message.text || `[template ${(content.template || {}).name}]`));
  } else {
    bubble.append(node("pre", "", JSON.stringify(content[message.type], null, 2)));
  }
}

function render(message) {
  const bubble = node("div", `bubble ${message.direction}`);
  bubble.dataset.id = message.id;
  const own = (message.content || {}).image;
  if (message.direction === "customer" && message.type === "image" && own && own.sha256 !== "sandbox") {
    // The customer's own photo, kept by the sandbox (whatsapp_sandbox/media.py).
    const img = node("img", "sent-image");
    img.alt = own.caption || "photo";
    img.src = `${api}/media/${encodeURIComponent(own.id)}`;
    bubble.append(img);
    if (own.caption) bubble.append(node("span", "", own.caption));
  } else if (message.direction === "customer") {
    bubble.append(node("span", "", customerText(message)));
  } else {
    renderBusiness(bubble, message);
  }
  const meta = node("span", "meta", timeOf(message.at));
  if (message.direction === "customer") {
    // Grey ticks: delivered to the business; blue: the business read it (its read receipt).
    const ticks = node("span", `ticks ${message.status || "sent"}`, message.status === "sent" ? " ✓" : " ✓✓");
    ticks.dataset.ticks = message.status || "sent";
    meta.append(ticks);
  }
  bubble.append(meta);
  const list = el("messages");
  list.append(bubble);
  list.scrollTop = list.scrollHeight;
}

function openList(action, contextId) {
  const rows = el("list-picker-rows");
  rows.replaceChildren();
  el("list-picker-title").textContent = action.button || "Choose";
  for (const section of action.sections || []) {
    if (section.title) rows.append(node("li", "muted", section.title));
    for (const row of section.rows || []) {
      const item = node("li");
      const pick = node("button", "", row.title);
      pick.type = "button";
      if (row.description) pick.append(node("small", "", row.description));
      pick.addEventListener("click", () => {
        el("list-picker").hidden = true;
        sendReply("list_reply", row.id, row.title, contextId);
      });
      item.append(pick);
      rows.append(item);
    }
  }
  el("list-picker").hidden = false;
}

async function post(body) {
  if (!chat) return;
  try {
    const response = await fetch(`${api}/customers/${encodeURIComponent(chat.waId)}/messages`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ profile_name: chat.profileName, ...(chat.username ? { username: chat.username } : {}), ...body }),
    });
    const result = await response.json();
    if (!response.ok) {
      notice(result.error || `Sandbox answered HTTP ${response.status}`);
    } else if (result.webhook_status !== 200) {
      notice(`The connector answered ${result.webhook_status ?? "nothing"}; the sandbox keeps redelivering like Meta.`);
    } else {
      notice("");
    }
  } catch (error) {
    notice(`Could not reach the sandbox: ${error}`);
  }
}

function sendReply(kind, id, title, contextId) {
  post({ reply: { kind, id, title, context_id: contextId } });
}

async function poll(myGeneration) {
  let primed = false;
  while (chat && myGeneration === generation) {
    try {
      const query = new URLSearchParams({ wa_id: chat.waId, after: chat.lastSeq, wait: primed ? 25 : 0 });
      const response = await fetch(`${api}/messages?${query}`);
      const data = await response.json();
      if (myGeneration !== generation) return;
      for (const message of data.messages) render(message);
      // Every message of this customer up to last_seq was in the answer.
      chat.lastSeq = data.last_seq;
      primed = true;
    } catch (error) {
      notice(`Lost the sandbox (${error}); retrying…`);
      await new Promise((resolve) => setTimeout(resolve, 2000));
    }
  }
}

// Blue ticks and "typing…": the sandbox's presence of this chat, every 600 ms while it is open.
async function watchPresence(myGeneration) {
  while (chat && myGeneration === generation) {
    try {
      const response = await fetch(`${api}/customers/${encodeURIComponent(chat.waId)}/presence`);
      const presence = await response.json();
      if (myGeneration !== generation) return;
      el("typing").hidden = !presence.typing;
      for (const [id, status] of Object.entries(presence.statuses || {})) {
        const ticks = document.querySelector(`.bubble[data-id="${CSS.escape(id)}"] .ticks`);
        if (ticks && status && ticks.dataset.ticks !== status) {
          ticks.dataset.ticks = status;
          ticks.className = `ticks ${status}`;
          ticks.textContent = status === "sent" ? " ✓" : " ✓✓";
        }
      }
    } catch (_) {
      // the message poll reports a lost sandbox
    }
    await new Promise((resolve) => setTimeout(resolve, 600));
  }
}

async function createPhoneLessCustomer(username, profileName) {
  const response = await fetch(`${api}/customers`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ username, profile_name: profileName }),
  });
  const result = await response.json();
  if (!response.ok) throw new Error(result.error || `Sandbox answered HTTP ${response.status}`);
  return result;
}

async function openChat(event) {
  if (event) event.preventDefault();
  const profileName = el("profile-name").value.trim() || "Sandbox Customer";
  const username = el("username").value.trim().replace(/^@/, "");
  let waId = el("wa-id").value.trim();
  let ids = "";
  if (el("no-phone").checked && !BSUID.test(waId)) {
    if (!username) {
      notice("A customer without a phone number needs a username, e.g. priya.k.");
      return;
    }
    try {
      const customer = await createPhoneLessCustomer(username, profileName);
      waId = customer.user_id;
      el("wa-id").value = waId; // reopening this chat later: the same customer
    } catch (error) {
      notice(String(error.message || error));
      return;
    }
  } else if (!PHONE.test(waId) && !BSUID.test(waId)) {
    notice("The customer number is 7 to 15 digits with country code, e.g. 919876543210 (or tick No phone number).");
    return;
  }
  ids = BSUID.test(waId) ? `No phone number · @${username || "?"} · BSUID ${waId}` : (username ? `@${username}` : "");
  generation += 1;
  chat = { waId, profileName, username, lastSeq: 0 };
  el("customer-ids").textContent = ids;
  el("messages").replaceChildren();
  el("text").disabled = false;
  el("send").disabled = false;
  el("text").focus();
  notice("");
  el("typing").hidden = true;
  poll(generation);
  watchPresence(generation);
}

async function init() {
  // The handlers first: a click on "Open chat" while the configuration is still loading (a slow or busy
  // machine) would otherwise submit the form natively, reload the page and leave the composer disabled.
  el("customer-form").addEventListener("submit", openChat);
  el("composer").addEventListener("submit", (event) => {
    event.preventDefault();
    const text = el("text").value;
    if (!text.trim()) return;
    el("text").value = "";
    post({ text });
  });
  // The phone's attachment button: the chosen file goes to the sandbox's media store, and the
  // webhook carries its media id like Meta's (the inbox then downloads it with the access token).
  el("send-photo").addEventListener("click", () => { if (chat) el("send-file").click(); });
  el("send-file").addEventListener("change", () => {
    const file = el("send-file").files[0];
    el("send-file").value = "";
    if (!file || !chat) return;
    const reader = new FileReader();
    reader.onload = () => {
      const data = String(reader.result).split(",")[1] || "";
      const mime = file.type || "application/octet-stream";
      const type = mime.startsWith("image/") ? "image" : mime.startsWith("audio/") ? "audio" : mime.startsWith("video/") ? "video" : "document";
      const caption = el("text").value.trim();
      el("text").value = "";
      post({ media: { type, mime_type: mime, data_base64: data, ...(type === "document" ? { filename: file.name } : {}), ...(caption ? { caption } : {}) } });
    };
    reader.readAsDataURL(file);
  });
  el("send-location").addEventListener("click", () => {
    if (chat) post({ location: { latitude: 12.9716, longitude: 77.5946, name: "Kesar Lane, MG Road", address: "MG Road, Bengaluru" } });
  });
  el("list-picker-close").addEventListener("click", () => { el("list-picker").hidden = true; });
  try {
    const config = await (await fetch(`${api}/config`)).json();
    el("business-number").textContent = "+" + config.display_phone_number;
  } catch (_) {
    notice("Could not load the sandbox configuration.");
  }
}

init();
