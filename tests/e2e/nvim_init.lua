-- Drives ckls from a real Neovim (headless, `nvim --headless -u nvim_init.lua`) through Neovim's own LSP client:
-- load the docs/editors.md snippet for this version (it starts `ckls serve` on FileType: vim.lsp.start on 0.8+,
-- vim.lsp.start_client + vim.lsp.buf_attach_client on 0.7), open a Python file, wait for the model, edit the buffer
-- (didChange from Neovim's change tracking), then ask for textDocument/completion and
-- textDocument/inlineCompletion at the cursor, stop the client and write what happened as JSON. Input: the JSON
-- file named by $CKLS_NVIM_CONFIG ({snippet, file, line, col, new_line, result}). The test (test_neovim.py) reads
-- the result and Neovim's LSP log.
local uv = vim.uv or vim.loop
local cfg = vim.fn.json_decode(table.concat(vim.fn.readfile(os.getenv("CKLS_NVIM_CONFIG")), "\n"))
local v = vim.version()
local out = {
  version = string.format("%d.%d.%d", v.major, v.minor, v.patch),
  has_inline_completion = vim.lsp.inline_completion ~= nil,
  log_path = vim.lsp.get_log_path(),
}

local function finish(err)
  out.error = err
  vim.fn.writefile({ vim.fn.json_encode(out) }, cfg.result)
  vim.cmd("qall!")
end

local function wait(ms, cond, what)
  if not vim.wait(ms, cond, 20) then
    error("timed out waiting for " .. what, 0)
  end
end

-- the single client's answer to a request, or an error naming what came back instead
local function request(buf, method, params, ms)
  local res, err = vim.lsp.buf_request_sync(buf, method, params, ms)
  if not res then
    error(method .. ": " .. tostring(err), 0)
  end
  for _, r in pairs(res) do
    if r.err or r.error then
      error(method .. ": " .. vim.inspect(r.err or r.error), 0)
    end
    return r.result
  end
  error(method .. ": no client answered", 0)
end

local function run()
  -- INFO: window/logMessage at Info lands in the log as [INFO]; a line the server writes on stderr as [ERROR]
  vim.lsp.set_log_level("info")
  dofile(cfg.snippet) -- the docs/editors.md snippet for this version, as a user's init.lua holds it
  vim.cmd("edit " .. vim.fn.fnameescape(cfg.file))
  local buf = vim.api.nvim_get_current_buf()
  vim.bo[buf].filetype = "python" -- the languageId Neovim sends is the buffer's filetype

  local client
  wait(10000, function()
    for _, c in pairs((vim.lsp.get_clients or vim.lsp.get_active_clients)()) do
      if c.name == "ckls" and vim.lsp.buf_is_attached(buf, c.id) then
        client = c
      end
    end
    return client ~= nil
  end, "the snippet to attach a client named ckls to the buffer")
  local id = client.id
  wait(30000, function()
    return client.initialized == true
  end, "initialize")
  out.capabilities = client.server_capabilities
  out.omnifunc = vim.bo[buf].omnifunc

  -- the model loads in the background: ckls.stats says when
  local deadline = uv.now() + 120000
  repeat
    local st = request(buf, "workspace/executeCommand", { command = "ckls.stats" }, 5000)
    out.model = st and st.model
    if out.model ~= nil and out.model ~= "loading" and out.model ~= "not loaded" then
      break
    end
    vim.wait(50)
    uv.update_time()
  until uv.now() > deadline
  if out.model == nil or out.model == "loading" or out.model == "not loaded" then
    error("timed out waiting for the model (" .. tostring(out.model) .. ")", 0)
  end

  -- an edit in Neovim (didChange, incremental), then the cursor at its end as a user would have it
  vim.api.nvim_buf_set_lines(buf, cfg.line, cfg.line + 1, false, { cfg.new_line })
  vim.api.nvim_win_set_cursor(0, { cfg.line + 1, cfg.col })
  local pos = { textDocument = { uri = vim.uri_from_bufnr(buf) }, position = { line = cfg.line, character = cfg.col } }

  local t0 = uv.hrtime()
  out.completion = request(buf, "textDocument/completion",
    vim.tbl_extend("force", pos, { context = { triggerKind = 1 } }), 60000)
  out.completion_ms = (uv.hrtime() - t0) / 1e6
  -- the items as Neovim's completion menu would show them (0.7's omnifunc converts with this function)
  local util = vim.lsp.util
  if out.completion and util.text_document_completion_list_to_complete_items then
    local ok, items = pcall(util.text_document_completion_list_to_complete_items, out.completion, "")
    out.complete_items = ok and items or nil
  end
  -- inline completion requested through the same client (Neovim < 0.12 has no inline-completion UI)
  out.inline = request(buf, "textDocument/inlineCompletion",
    vim.tbl_extend("force", pos, { context = { triggerKind = 1 } }), 60000)
  out.buffer = vim.api.nvim_buf_get_lines(buf, 0, -1, false)
  out.uri = pos.textDocument.uri

  vim.lsp.stop_client(id)
  wait(10000, function()
    return vim.lsp.get_client_by_id(id) == nil
  end, "the client to stop")
end

local ok, err = xpcall(run, function(e)
  return tostring(e) .. (type(e) == "string" and e:find("timed out") and "" or "\n" .. debug.traceback())
end)
finish(not ok and err or vim.NIL)
