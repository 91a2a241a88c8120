"""A first routilux flow: a source, a transformer and a sink, run sequentially.

The flow looks like this::

    source --numbers--> squarer --squares--> printer
           values -> items

* ``source`` starts the job. Its ``trigger`` slot receives the entry parameters
  given to ``flow.execute`` and it emits a list of numbers.
* ``squarer`` squares every number. Its slot expects a key called ``items``, so the
  connection renames the source's ``values`` to ``items`` (a param_mapping).
* ``printer`` keeps what it receives so we can look at it after the run.

Run it with ``python examples/basic_example.py``.
"""

from __future__ import annotations

from routilux import Flow, Routine


class NumberSource(Routine):
    """Emits the numbers 1..count when the flow starts."""

    def __init__(self) -> None:
        super().__init__()
        # Every entry routine needs a slot called "trigger": flow.execute()
        # delivers the entry parameters there.
        self.define_slot("trigger", handler=self.start)
        # An event names the keys it carries; connections route it to slots.
        self.define_event("numbers", ["values"])

    def start(self, count: int) -> None:
        # A handler with a single parameter receives that key's value.
        self.emit("numbers", values=list(range(1, count + 1)))


class Squarer(Routine):
    """Squares a list of numbers."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("input", handler=self.square)
        self.define_event("squares", ["items", "total"])

    def square(self, items: list[int]) -> None:
        squares = [n * n for n in items]
        self.emit("squares", items=squares, total=sum(squares))


class Printer(Routine):
    """The sink: remembers every payload it receives."""

    def __init__(self) -> None:
        super().__init__()
        self.received: list[dict[str, object]] = []
        self.define_slot("input", handler=self.show)

    def show(self, items: list[int], total: int) -> None:
        # Several parameters: the handler gets the keys it names as keywords.
        self.received.append({"items": items, "total": total})
        print(f"printer got squares {items} (total {total})")


def main() -> None:
    # Sequential is the default strategy: execute() returns when the job is done.
    with Flow("basic") as flow:
        flow.add_routine(NumberSource(), "source")
        flow.add_routine(Squarer(), "squarer")
        printer = Printer()
        flow.add_routine(printer, "printer")

        # source.numbers -> squarer.input, renaming "values" to "items".
        flow.connect("source", "numbers", "squarer", "input", {"values": "items"})
        flow.connect("squarer", "squares", "printer", "input")

        job = flow.execute("source", entry_params={"count": 4})

        print(f"job status: {job.status}")
        print(f"events: {[record.event_name for record in job.execution_history]}")
        print(f"printer received {len(printer.received)} payload(s)")
        print("history:")
        for record in job.execution_history:
            print(f"  {record.routine_id:<8} {record.event_name:<10} {record.data}")


if __name__ == "__main__":
    main()
