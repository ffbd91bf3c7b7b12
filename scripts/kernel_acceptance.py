"""sdshell's Jupyter kernel driven by a real client (jupyter_client, nbclient).

Run by scripts/check_jupyter_kernel.sh in .venv-kernel:
    python scripts/kernel_acceptance.py REPO_ROOT SDSHELL_BINARY

Checks, each failing loudly:
  1. `sdshell kernel install --prefix` writes a kernelspec jupyter_client finds.
  2. nbclient executes examples/quickstart.ipynb; every image/png output naming a file holds that
     file's bytes; the session journal the cells wrote replays with `reproduced N/N`.
  3. completion of `sam` (after `set `) offers `sampler`.
  4. an interrupt (SIGINT, as Jupyter's interrupt button sends with interrupt_mode "signal")
     during a 200-step generation returns within two steps; the next cell runs; an
     interrupt_request on the control channel does the same.
  5. an error names the cell, line and column; the cells queued behind a failing one are aborted.
  6. every IOPub message, read raw from the socket, passes jupyter_client's signature check; a
     tampered one fails it; a forged request is ignored and the kernel goes on.
  7. shutdown ends the kernel process.
"""
import atexit
import base64
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

import nbformat
import zmq
from jupyter_client import KernelManager
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.session import Session
from nbclient import NotebookClient

ROOT, SDSHELL = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
failures = []


def check(condition, what):
    print(("ok   " if condition else "FAIL ") + what, flush=True)
    if not condition:
        failures.append(what)


work = tempfile.mkdtemp(prefix="sdshell-kernel-")
examples = os.path.join(work, "examples")
os.makedirs(examples)
os.symlink(os.path.join(ROOT, "models"), os.path.join(work, "models"))
shutil.copy(os.path.join(ROOT, "examples", "quickstart.ipynb"), examples)

# 1. The kernelspec.
prefix = os.path.join(work, "prefix")
subprocess.run([SDSHELL, "kernel", "install", "--prefix", prefix], check=True)
os.environ["JUPYTER_PATH"] = os.path.join(prefix, "share", "jupyter")
spec = KernelSpecManager().get_kernel_spec("sdshell")
check(spec.argv[0] == os.path.realpath(SDSHELL) and spec.language == "sdscript", "kernelspec installed and found: %s" % spec.argv)

# 2. The quickstart notebook.
notebook = nbformat.read(os.path.join(examples, "quickstart.ipynb"), as_version=4)
started = time.time()
NotebookClient(notebook, kernel_name="sdshell", timeout=600, resources={"metadata": {"path": examples}}).execute()
print("quickstart.ipynb executed in %.1f s" % (time.time() - started))
images = previews = 0
for cell in notebook.cells:
    for output in cell.get("outputs", []):
        check(output.output_type != "error", "no error in cell %r" % cell.source[:40])
        if output.output_type == "display_data" and "image/png" in output.data:
            name = output.data.get("text/plain", "")
            if name == "live preview":
                previews += 1
                continue
            with open(os.path.join(examples, name), "rb") as f:
                check(base64.b64decode(output.data["image/png"]) == f.read(), "displayed PNG equals the file %s" % name)
            images += 1
# Two generated images, the grid picture (its cells are not shown one by one), `show last` again.
check(images == 2 + 1 + 1, "%d pictures shown (4 expected)" % images)
check(previews == 1, "one live preview display, updated in place (%d)" % previews)
progress = [o for c in notebook.cells for o in c.get("outputs", []) if o.output_type == "display_data" and
            o.data.get("text/plain", "").startswith("step ")]
check(progress and progress[0].data["text/plain"].startswith("step 20/20"), "the progress display ends at its last step: %r" %
      (progress[0].data["text/plain"] if progress else None))
journals = glob.glob(os.path.join(examples, "outputs", "sessions", "*.sdscript"))
check(len(journals) == 1, "one session journal: %s" % journals)
if journals:
    replay = subprocess.run([SDSHELL, "-e", 'replay "%s" verify=true' % journals[0]], cwd=examples, capture_output=True, text=True)
    check(re.search(r"reproduced (\d+)/\1\b", replay.stdout) is not None and "reproduced 0/" not in replay.stdout,
          "the notebook's journal replays: %s" % replay.stdout.strip().splitlines()[-1:])

# A kernel of our own for the rest.
km = KernelManager(kernel_name="sdshell")
km.start_kernel(cwd=examples)
atexit.register(lambda: km.is_alive() and km.shutdown_kernel(now=True))
kc = km.blocking_client()
kc.start_channels()
kc.wait_for_ready(timeout=60)
connection = km.get_connection_info()
raw = zmq.Context.instance().socket(zmq.SUB)
raw.setsockopt(zmq.SUBSCRIBE, b"")
raw.connect("tcp://%s:%d" % (connection["ip"], connection["iopub_port"]))
time.sleep(0.3)


def run(code, timeout=120):
    """Executes code; returns (reply content, iopub messages of it)."""
    msg_id = kc.execute(code)
    messages = []
    deadline = time.time() + timeout
    while True:
        message = kc.get_iopub_msg(timeout=max(1, deadline - time.time()))
        if message["parent_header"].get("msg_id") != msg_id:
            continue
        messages.append(message)
        if message["msg_type"] == "status" and message["content"]["execution_state"] == "idle":
            break
    reply = kc.get_shell_msg(timeout=10)
    while reply["parent_header"].get("msg_id") != msg_id:
        reply = kc.get_shell_msg(timeout=10)
    return reply["content"], messages


reply, _ = run('model "../models/demo.safetensors"\nset steps=20')
check(reply["status"] == "ok", "model loads in the kernel")

# 3. Completion.
kc.complete("set sam", 7)
completion = kc.get_shell_msg(timeout=10)["content"]
check(any(m.startswith("sampler") for m in completion["matches"]) and completion["cursor_start"] == 4,
      "completing `set sam` offers sampler: %s from %d" % (completion["matches"], completion["cursor_start"]))


# 4. Interrupts.
def interrupted_generation(interrupt, how):
    msg_id = kc.execute('generate "a red circle on a blue background" steps=200 size=512x512 seed=7')
    step_at_interrupt = step_time = interrupted_at = None
    last_step = 0
    while True:
        message = kc.get_iopub_msg(timeout=120)
        if message["parent_header"].get("msg_id") != msg_id:
            continue
        kind = message["msg_type"]
        if kind in ("display_data", "update_display_data"):
            found = re.match(r"step (\d+)/200", message["content"]["data"].get("text/plain", ""))
            if found:
                last_step = int(found.group(1))
                rate = re.search(r"([\d.]+) (it/s|s/it)", message["content"]["data"]["text/plain"])
                if step_at_interrupt is None and last_step >= 4 and rate:
                    step_time = float(rate.group(1)) if rate.group(2) == "s/it" else 1 / float(rate.group(1))
                    step_at_interrupt, interrupted_at = last_step, time.time()
                    interrupt()
        if kind == "status" and message["content"]["execution_state"] == "idle":
            break
    returned = time.time() - interrupted_at
    reply = kc.get_shell_msg(timeout=10)["content"]
    check(reply["status"] == "error" and reply["ename"] == "Interrupted", "%s: the cell ends interrupted: %s" % (how, reply.get("evalue")))
    check(last_step <= step_at_interrupt + 2, "%s: stopped within two steps (interrupt at %d, last step %d)" % (how, step_at_interrupt, last_step))
    check(returned <= 3 * step_time + 1, "%s: returned %.2f s after the interrupt (a step takes %.2f s)" % (how, returned, step_time))
    reply, messages = run('print "the next cell"')
    check(reply["status"] == "ok" and any(m["msg_type"] == "stream" and "the next cell" in m["content"]["text"] for m in messages),
          "%s: the next cell runs" % how)


interrupted_generation(km.interrupt_kernel, "SIGINT")


def control_interrupt():
    kc.control_channel.send(kc.session.msg("interrupt_request", {}))


interrupted_generation(control_interrupt, "interrupt_request")
check(kc.get_control_msg(timeout=10)["msg_type"] == "interrupt_reply", "interrupt_request is answered on the control channel")

# 5. Errors name the cell, line and column.
reply, messages = run('set steps=20\nset stepz=3')
check(reply["status"] == "error" and re.match(r"<cell \d+>:2:5: ", reply["evalue"]) is not None,
      "the error names cell, line and column: %s" % reply.get("evalue"))
check(any(m["msg_type"] == "error" for m in messages), "the error is published on IOPub")

# 5b. A failing cell aborts the cells queued behind it (stop_on_error), as ipykernel does; the
# first cell generates for a moment, so the second is queued before it fails.
first = kc.execute('generate "a red circle on a blue background" seed=3 steps=6\nset stepz=3')
second = kc.execute('print "queued"')
replies = {}
while len(replies) < 2:
    message = kc.get_shell_msg(timeout=60)
    replies[message["parent_header"].get("msg_id")] = message["content"]
check(replies[first]["status"] == "error" and replies[second]["status"] == "aborted",
      "a failing cell aborts the queued one: %s, %s" % (replies[first]["status"], replies[second]["status"]))
reply, _ = run('print "after the abort"')
check(reply["status"] == "ok", "the next cell after an abort runs")

# 6. Signatures: every raw IOPub frame set passes Session's check; a tampered one does not.
checked = 0
tampered_refused = False
verifier = Session(key=kc.session.key)   # its own record of signatures seen (the client's has these already)
while raw.poll(200):
    frames = raw.recv_multipart()
    identities, message_frames = verifier.feed_identities(frames)
    verifier.deserialize(message_frames)   # raises on a wrong signature
    checked += 1
    if not tampered_refused:
        bad = list(message_frames)
        bad[-1] = bad[-1].replace(b"}", b', "x": 1}', 1) if bad[-1].endswith(b"}") else bad[-1] + b" "
        try:
            Session(key=kc.session.key).deserialize(bad)
        except ValueError:
            tampered_refused = True
check(checked > 20, "%d IOPub messages pass jupyter_client's signature check" % checked)
check(tampered_refused, "a tampered message fails the check")
forger = zmq.Context.instance().socket(zmq.DEALER)
forger.connect("tcp://%s:%d" % (connection["ip"], connection["shell_port"]))
forged = kc.session.msg("execute_request", {"code": 'print "forged"', "silent": False})
frames = kc.session.serialize(forged)
frames[1] = b"0" * 64
forger.send_multipart(frames)
check(not forger.poll(1500), "a forged request gets no reply")
reply, messages = run('print "still here"')
check(reply["status"] == "ok" and not any("forged" in m["content"].get("text", "") for m in messages), "the kernel goes on after a forged request")

# 7. Shutdown.
kc.stop_channels()
km.shutdown_kernel(now=False)
check(not km.is_alive(), "shutdown ends the kernel")

shutil.rmtree(work, ignore_errors=True)
if failures:
    print("%d check(s) failed" % len(failures))
    sys.exit(1)
print("kernel acceptance: all checks passed")
