// Hearth's python sandbox: Pyodide (CPython in WebAssembly) run by Deno, driven over
// stdin/stdout with one JSON object per line. app/tools/sandbox.py starts it with Deno
// permissions that allow reading Pyodide and the conversation's scratch folder, writing
// the scratch folder, and nothing else (no network, processes, FFI or environment).
//
// argv: PYODIDE_DIR SCRATCH_DIR MEMORY_LIMIT_BYTES OUTPUT_CAP_CHARS [SNAPSHOT_FILE [make]]
//   With "make", the driver only writes a memory snapshot of a freshly loaded interpreter
//   to SNAPSHOT_FILE and exits (no user code ever runs in that process); sessions then
//   start from the snapshot in a fraction of a second instead of seconds.
// in:   {"id": N, "code": "..."}
// out:  {"ready": true, "load_ms": N} once, then {"id": N, "output": "...", "error": "..." | null,
//        "duration_ms": N, "truncated": N} per call (truncated = characters of output left out).

const [pyodideDir, scratchDir, memLimitArg, outputCapArg, snapshotFile, mode] = Deno.args;
const MEMORY_LIMIT = Number(memLimitArg) || 512 * 1024 * 1024;
const OUTPUT_CAP = Number(outputCapArg) || 20000;
const encoder = new TextEncoder();

async function send(obj) {
  const data = encoder.encode(JSON.stringify(obj) + "\n");
  let written = 0;
  while (written < data.length) {
    written += await Deno.stdout.write(data.subarray(written));
  }
}

// The memory limit. V8's heap flags do not bound WebAssembly memory, and Pyodide's
// module owns its memory, but every growth goes through Emscripten's JS resize hook,
// which calls Memory.prototype.grow and reports failure to malloc when it throws:
// Python then raises MemoryError and the interpreter lives on.
const originalGrow = WebAssembly.Memory.prototype.grow;
WebAssembly.Memory.prototype.grow = function (deltaPages) {
  if (this.buffer.byteLength + deltaPages * 65536 > MEMORY_LIMIT) {
    throw new RangeError(`Hearth sandbox memory limit (${MEMORY_LIMIT} bytes) reached`);
  }
  return originalGrow.call(this, deltaPages);
};

// Output is collected per call and capped; what is cut is counted, not kept.
let out = "";
let dropped = 0;
function collect(text) {
  const room = OUTPUT_CAP - out.length;
  if (room >= text.length) {
    out += text;
  } else {
    if (room > 0) out += text.slice(0, room);
    dropped += text.length - Math.max(room, 0);
  }
}

const t0 = performance.now();
const indexURL = pyodideDir.replace(/\/?$/, "/");
const { loadPyodide } = await import(new URL("file://" + indexURL + "pyodide.mjs").href);

if (mode === "make") {
  const py = await loadPyodide({ indexURL, _makeSnapshot: true });
  const snap = py.makeMemorySnapshot();
  const tmp = `${snapshotFile}.part-${Date.now()}-${Math.floor(Math.random() * 1e9)}`;
  Deno.writeFileSync(tmp, snap);
  Deno.renameSync(tmp, snapshotFile);
  await send({ snapshot: snapshotFile, bytes: snap.length, load_ms: Math.round(performance.now() - t0) });
  Deno.exit(0);
}

let snapshot;
if (snapshotFile) {
  try {
    snapshot = Deno.readFileSync(snapshotFile);
  } catch (e) {
    snapshot = undefined; // no snapshot yet: a plain (slower) load
  }
}
const pyodide = await loadPyodide({
  indexURL,
  stdout: collect,
  stderr: collect,
  env: { HOME: "/mnt/data" },
  ...(snapshot ? { _loadSnapshot: snapshot } : {}),
});
// Write (not batched) so partial lines and print(end="") come through as they are.
pyodide.setStdout({ write: (buf) => { collect(new TextDecoder().decode(buf)); return buf.length; } });
pyodide.setStderr({ write: (buf) => { collect(new TextDecoder().decode(buf)); return buf.length; } });

// No terminal: input() and sys.stdin read end-of-file at once. (Left alone, Pyodide would read
// the process's stdin, which carries this driver's requests.)
pyodide.setStdin({ stdin: () => undefined });

pyodide.FS.mkdirTree("/mnt/data");
pyodide.FS.mount(pyodide.FS.filesystems.NODEFS, { root: scratchDir }, "/mnt/data");

pyodide.runPython(`
import linecache, os, sys, traceback
from pyodide.code import eval_code_async

os.chdir("/mnt/data")

# Emscripten's system() goes to Node's child_process, which Deno refuses (no --allow-run)
# by aborting the whole interpreter; say no politely instead, as for subprocess.
def _hearth_no_processes(*args, **kwargs):
    raise OSError(38, "the python sandbox cannot start processes")

import posix
os.system = posix.system = _hearth_no_processes
_hearth_ns = {"__name__": "__main__", "__builtins__": __builtins__}
_hearth_cells = 0

def _hearth_format_error(exc, filename):
    # Keep only the frames of the user's code, as a notebook shows them.
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename != filename:
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(exc), exc, tb))

async def _hearth_run(code):
    global _hearth_cells
    _hearth_cells += 1
    filename = f"<cell {_hearth_cells}>"
    # Tracebacks quote the lines of earlier cells too, as in Jupyter.
    linecache.cache[filename] = (len(code), None, code.splitlines(True), filename)
    try:
        result = await eval_code_async(code, globals=_hearth_ns, return_mode="last_expr",
                                       filename=filename)
        if result is not None:
            print(repr(result))
        return None
    except BaseException as exc:  # SystemExit and KeyboardInterrupt too: report, keep serving
        return _hearth_format_error(exc, filename)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
`, { filename: "<hearth>" });
const run = pyodide.globals.get("_hearth_run");
await send({ ready: true, load_ms: Math.round(performance.now() - t0), snapshot: !!snapshot });

// Code awaiting something that never comes (an Event nobody sets) leaves Deno with nothing
// pending, and Deno would exit; this timer keeps it alive so the host's timeout decides.
setInterval(() => {}, 1 << 30);

const decoder = new TextDecoder();
let pending = "";
for await (const chunk of Deno.stdin.readable) {
  pending += decoder.decode(chunk, { stream: true });
  let nl;
  while ((nl = pending.indexOf("\n")) >= 0) {
    const line = pending.slice(0, nl);
    pending = pending.slice(nl + 1);
    if (!line.trim()) continue;
    let req;
    try {
      req = JSON.parse(line);
    } catch (e) {
      await send({ id: null, output: "", error: `bad request: ${e}`, duration_ms: 0, truncated: 0 });
      continue;
    }
    out = "";
    dropped = 0;
    const start = performance.now();
    let error = null;
    try {
      error = await run(String(req.code ?? ""));
    } catch (e) {
      // A failure of Pyodide itself (e.g. the WebAssembly memory could not grow at a bad moment).
      error = `${e && e.message ? e.message : e}`;
    }
    await send({
      id: req.id ?? null,
      output: out,
      error: error ?? null,
      duration_ms: Math.round((performance.now() - start) * 10) / 10,
      truncated: dropped,
    });
  }
}
