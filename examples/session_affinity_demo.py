"""Session affinity: three sessions, each keeping its context, run concurrently.

routilux's take on a worker pool's ``execute_in_session``: a job started with
``flow.execute(..., session="...")`` runs in that session. Activations of one
routine in one session run one at a time and in order, whatever the job, and
share that routine's ``session_state``, a dict the routine keeps per session;
different sessions run in parallel on the pool.

Three sessions (classification, translation, summarization) each send several
operations to one ``Assistant`` routine. Every operation reads and extends what
its session did before: the classifier keeps its tallies, the translator its
glossary, the summarizer the text it has read so far. Run with::

    python examples/session_affinity_demo.py
"""

from __future__ import annotations

import threading
from typing import Any

from routilux import Flow, Routine

WORKERS = 4
SESSIONS = {
    "classification_1234": [
        ("classify", "I love this library"),
        ("classify", "The docs are great"),
        ("classify", "This bug is awful"),
    ],
    "translation_5678": [
        ("translate", "hello world"),
        ("translate", "hello again"),
        ("translate", "good night world"),
    ],
    "summarization_9012": [
        ("summarize", "Routines have slots and events."),
        ("summarize", "A flow connects them."),
        ("summarize", "Jobs run on a thread pool."),
    ],
}
# One more operation per session, in a job of its own.
MORE = {
    "classification_1234": ("classify", "Great work"),
    "translation_5678": ("translate", "hello world"),
    "summarization_9012": ("summarize", "Sessions keep context."),
}

WORDS = {"hello": "bonjour", "world": "monde", "again": "encore", "good": "bonne"}
POSITIVE = {"love", "great"}


class Client(Routine):
    """Sends a session's operations, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("trigger", handler=self.send)
        self.define_event("request", ["op", "text", "step"])

    def send(self, operations: list[tuple[str, str]], first_step: int = 1) -> None:
        for step, (op, text) in enumerate(operations, start=first_step):
            self.emit("request", op=op, text=text, step=step)


class Assistant(Routine):
    """Serves every session; its context per session lives in ``session_state``."""

    def __init__(self, sessions: int) -> None:
        super().__init__()
        # The first operation of each session waits here for the others: the
        # wait ends only if every session was running at the same moment.
        self.meeting = threading.Barrier(sessions)
        self.overlapped = True
        self.lock = threading.Lock()  # guards contexts (read by the demo)
        self.contexts: dict[str, str] = {}
        self.define_slot("input", handler=self.serve)

    def serve(self, op: str, text: str, step: int) -> dict[str, Any]:
        context = self.session_state  # this session's dict, kept across jobs
        if not context:
            try:
                self.meeting.wait(timeout=10)
            except threading.BrokenBarrierError:
                self.overlapped = False
        # One operation of a session at a time: no lock needed on its context.
        context.setdefault("steps", []).append(step)
        if op == "classify":
            answer = self.classify(context, text)
        elif op == "translate":
            answer = self.translate(context, text)
        else:
            answer = self.summarize(context, text)
        with self.lock:
            self.contexts[str(self.get_session())] = describe(context)
        return answer

    @staticmethod
    def classify(context: dict[str, Any], text: str) -> dict[str, int]:
        tally = context.setdefault("tally", {"positive": 0, "negative": 0})
        words = set(text.lower().split())
        tally["positive" if words & POSITIVE else "negative"] += 1
        return dict(tally)

    @staticmethod
    def translate(context: dict[str, Any], text: str) -> dict[str, Any]:
        glossary = context.setdefault("glossary", {})
        words = []
        for word in text.lower().split():
            words.append(glossary.setdefault(word, WORDS.get(word, f"<{word}>")))
        return {"translation": " ".join(words), "glossary": len(glossary)}

    @staticmethod
    def summarize(context: dict[str, Any], text: str) -> dict[str, Any]:
        read = context.setdefault("read", [])
        read.append(text)
        return {"summary": f"{len(read)} sentences, {sum(map(len, read))} chars"}


def describe(context: dict[str, Any]) -> str:
    """A session's context, as the demo prints it."""
    steps = context["steps"]
    if "tally" in context:
        what = ", ".join(f"{k}={v}" for k, v in context["tally"].items())
    elif "glossary" in context:
        what = ", ".join(f"{k}->{v}" for k, v in sorted(context["glossary"].items()))
    else:
        what = f"{len(context['read'])} sentences read"
    return f"steps {steps}; {what}"


def main() -> None:
    assistant = Assistant(len(SESSIONS))
    with Flow(execution_strategy="concurrent", max_workers=WORKERS) as flow:
        flow.add_routine(Client(), "client")
        flow.add_routine(assistant, "assistant")
        flow.connect("client", "request", "assistant", "input")

        print("=== 1. Three sessions, run concurrently ===")
        jobs = [
            flow.execute("client", {"operations": ops}, session=session)
            for session, ops in SESSIONS.items()
        ]
        print(f"started {len(jobs)} jobs, one per session, on {WORKERS} workers")
        assert flow.wait_for_completion(30)
        print(f"all three sessions ran at the same time: {assistant.overlapped}")
        print(f"job statuses: {', '.join(str(job.status) for job in jobs)}")
        for session in SESSIONS:
            print(f"{session}: {assistant.contexts[session]}")

        print("=== 2. One more operation per session: the context is still there ===")
        for session, operation in MORE.items():
            job = flow.execute(
                "client", {"operations": [operation], "first_step": 4}, session=session
            )
            assert job.wait(30)
            print(f"{session} step 4: {job.result()['assistant']}")

    # Leaving the block waited for the pool to be idle: the figures are final.
    print("=== 3. Pool statistics ===")
    stats = flow.get_stats()
    sessions = stats["sessions"]
    print(
        f"session states kept: {sessions['states']} ({sessions['sessions']} "
        f"sessions, {sessions['in_use']} in use); lanes busy now: "
        f"{sessions['lanes']}; idle states expire after {sessions['ttl']:.0f}s"
    )
    print(f"jobs completed: {stats['jobs'].get('completed', 0)}")
    print("Demo finished.")


if __name__ == "__main__":
    main()
