#!/usr/bin/env python3
"""Times `steward chat` from its start to its first answer line, with the request typed at
once: what a person waits for on the first request.

    python3 scripts/chat_first_answer.py target/debug/steward evals/inventory.json "is psra up?" [runs]

Prints each run and the median. Run `steward warm --inventory FILE` first to measure with the
inventory's prompt state saved (as `scripts/demo` does), or delete <home>/cache/kv/*.inv.kv
to measure without it.
"""
import statistics
import subprocess
import sys
import time


def first_answer(steward: str, inventory: str, request: str) -> float:
    started = time.monotonic()
    chat = subprocess.Popen([steward, "chat", "--inventory", inventory], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    chat.stdin.write(request + "\n")
    chat.stdin.flush()
    seen = ""
    while not seen.endswith("steward> "):
        ch = chat.stdout.read(1)
        if not ch:
            raise SystemExit(f"steward chat ended without an answer:\n{seen}")
        seen += ch
    took = time.monotonic() - started
    chat.stdin.close()
    chat.wait(timeout=120)
    return took


def main() -> None:
    steward, inventory, request = sys.argv[1:4]
    runs = int(sys.argv[4]) if len(sys.argv) > 4 else 5
    times = []
    for i in range(runs):
        times.append(first_answer(steward, inventory, request))
        print(f"run {i + 1}: {times[-1]:.2f} s")
    print(f"median {statistics.median(times):.2f} s over {runs} runs")


if __name__ == "__main__":
    main()
