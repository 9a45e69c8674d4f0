#!/usr/bin/env python3
"""Runs the test command and ends it when it hangs, naming the tests that were still running.

    test-watchdog.py [--idle SECONDS] [--limit SECONDS] -- COMMAND...

The command's output passes through as it comes. Swift Testing's "Test X started." and its
passed/failed lines (and XCTest's "Test Case ... started/passed/failed") tell which tests run.
When no test starts or ends for --idle seconds (default 300), or the whole run passes --limit
(default 1800), the command's process group is killed, the tests still running are listed, and
the exit status is 124, so CI fails within minutes of a hang instead of running into its own limit.
"""
import os, re, signal, subprocess, sys, threading, time

def main():
    args = sys.argv[1:]
    idle, limit = 300.0, 1800.0
    while args and args[0] != "--":
        flag, value = args[0], float(args[1])
        if flag == "--idle": idle = value
        elif flag == "--limit": limit = value
        else: sys.exit(f"test-watchdog: unknown option {flag}")
        args = args[2:]
    command = args[1:]
    if not command: sys.exit("test-watchdog: no command after --")

    started = re.compile(r"^[◇] Test (.+?) started\.$|^Test Case '(.+?)' started")
    ended = re.compile(r"^[✔✘] Test (.+?) (passed|failed|skipped)|^Test Case '(.+?)' (passed|failed|skipped)")
    running, lock = {}, threading.Lock()
    last_progress = [time.monotonic()]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)

    def read():
        for raw in process.stdout:
            line = raw.decode("utf-8", "replace")
            sys.stdout.write(line)
            sys.stdout.flush()
            text = line.strip()
            with lock:
                if m := started.match(text):
                    running[m.group(1) or m.group(2)] = time.monotonic()
                    last_progress[0] = time.monotonic()
                elif m := ended.match(text):
                    name = m.group(1) or m.group(3)
                    # Parameterized tests end once, as "X with N test cases passed".
                    name = re.sub(r" with \d+ test cases?$", "", name)
                    running.pop(name, None)
                    last_progress[0] = time.monotonic()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    begun = time.monotonic()
    while process.poll() is None:
        time.sleep(1)
        now = time.monotonic()
        with lock:
            quiet = now - last_progress[0]
            hung = quiet > idle or now - begun > limit
            if not hung: continue
            why = f"no test started or ended for {quiet:.0f} s" if quiet > idle else f"the run passed its {limit:.0f} s limit"
            names = sorted(running, key=running.get)
            print(f"\ntest-watchdog: HUNG: {why}; still running:", file=sys.stderr)
            for name in names:
                print(f"  {name} (for {now - running[name]:.0f} s)", file=sys.stderr)
            if not names: print("  (no test had started: the hang is outside the tests)", file=sys.stderr)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        sys.exit(124)
    reader.join(timeout=10)
    sys.exit(process.returncode)

if __name__ == "__main__":
    main()
