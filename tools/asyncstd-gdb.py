# gdb commands for programs built on asyncstd: list the runtime's tasks and
# show a parked task's stack.
#
#   (gdb) source tools/asyncstd-gdb.py
#   (gdb) info async-tasks          every started task, then the unstarted ones
#   (gdb) async-task 12 bt          backtrace of task 12 (any gdb command works: "async-task 12 bt full")
#   (gdb) async-task reader bt      the same for the first task named "reader"
#
# The task list is the runtime's registry (each worker's `tasks` list and
# its queue of unstarted tasks), read from the debug info of libasyncstd, so
# the library must be built with -g (meson's default debugoptimized build is).
# `async-task N CMD` points the selected thread's registers at the context the
# parked task saved when it switched out (src/task/switch_<arch>.S), runs CMD,
# and puts the registers back, also when CMD fails. That needs a live process:
# a core file's registers cannot be changed. A running task has no saved
# context: its stack is its worker thread's (`thread apply all bt`).

import time

import gdb

STATES = {0: "not started", 1: "ready", 2: "running", 3: "parked", 4: "ending"}
WAIT_FD, WAIT_TIMER, WAIT_PRIM, WAIT_JOB, WAIT_JOIN, WAIT_TEXT, WAIT_FUTURE = range(1, 8)


def _runtime():
    try:
        rt = gdb.parse_and_eval("async__rt")
    except gdb.error as e:
        raise gdb.GdbError("asyncstd: no debug info for async__rt (%s)" % e)
    if int(rt["workers"]) == 0:
        raise gdb.GdbError("asyncstd: the runtime is not running")
    return rt


def _string(ptr, limit=200):
    """The NUL-terminated string at ptr (at most limit bytes), or None."""
    addr = int(ptr)
    if addr == 0:
        return None
    inferior = gdb.selected_inferior()
    for n in (limit, 64, 16):  # a shorter read near the end of a mapping
        try:
            raw = bytes(inferior.read_memory(addr, n))
            return raw.split(b"\0", 1)[0].decode("utf-8", "replace")
        except gdb.MemoryError:
            continue
    return None


def _symbol(addr):
    if not addr:
        return None
    try:
        out = gdb.execute("info symbol 0x%x" % addr, to_string=True)
    except gdb.error:
        return None
    if out.startswith("No symbol"):
        return None
    return out.split(" ")[0]


def _task_type():
    return gdb.lookup_type("async__task_t").pointer()


def _offset(member):
    """The offset of a member of async__task_t."""
    v = gdb.parse_and_eval("&((async__task_t *)0)->%s" % member)
    return int(v.cast(gdb.lookup_type("unsigned long")))


def tasks():
    """Yields (task value, worker id, started) for every task in the registry."""
    rt = _runtime()
    ttype = _task_type()
    live_off = _offset("live")
    node_off = _offset("node")
    for i in range(int(rt["nworkers"])):
        w = rt["workers"][i]
        # started tasks: linked through their `live` node (src/task/list.h)
        n = w["tasks"]["head"]
        seen = 0
        while int(n) != 0 and seen < 100000:
            yield gdb.Value(int(n) - live_off).cast(ttype), int(w["id"]), True
            n = n["next"]
            seen += 1
        # unstarted tasks: linked through their `node` message
        m = w["newq_head"]
        seen = 0
        while int(m) != 0 and seen < 100000:
            yield gdb.Value(int(m) - node_off).cast(ttype), int(w["id"]), False
            m = m["next"]
            seen += 1


def _int(v):
    return int(v)


def describe(t):
    wt = t["wait"]
    kind = _int(wt["kind"])
    what = _string(wt["what"])
    num = _int(wt["num"])
    ptr = _int(wt["ptr"])
    fn = _int(wt["fn"])
    if kind == WAIT_FD:
        name = what or (_symbol(fn) or "io").replace("_attempt", "")
        return "%s(fd %d)" % (name, num)
    if kind == WAIT_TIMER:
        if num == 0:
            return "sleep %d ms" % ptr
        # uv_hrtime() is CLOCK_MONOTONIC: the same clock as ours on a live process
        left = (num - time.clock_gettime_ns(time.CLOCK_MONOTONIC)) // 1000000
        return "sleep until %+d ms" % left
    if kind == WAIT_PRIM:
        return "%s 0x%x" % (what or "sync", ptr)
    if kind == WAIT_JOB:
        name = _symbol(fn) or "job"
        if name.startswith("run_"):
            name = name[4:]
        path = _string(wt["path"])
        return "pool: %s%s" % (name, ' "%s"' % path if path else "")
    if kind == WAIT_JOIN:
        return "task %d" % num
    if kind == WAIT_TEXT:
        text = what or "?"
        return text.replace("%lld", str(num))
    if kind == WAIT_FUTURE:
        return "future 0x%x" % ptr
    return ""


class InfoAsyncTasks(gdb.Command):
    """List the asyncstd runtime's tasks: id, name, worker, state, what a parked one awaits."""

    def __init__(self):
        super().__init__("info async-tasks", gdb.COMMAND_STATUS)

    def invoke(self, arg, from_tty):
        print("%-6s %-16s %-6s %-12s %s" % ("Id", "Name", "Worker", "State", "Awaits"))
        for t, wid, started in tasks():
            state = STATES.get(_int(t["state"]), "?") if started else "not started"
            name = _string(t["name"].address, 16) or ""
            awaits = describe(t) if state == "parked" else ""
            print("%-6d %-16s %-6d %-12s %s" % (_int(t["id"]), name, wid, state, awaits))


def _saved_registers(t):
    """The registers a parked task's switch saved: {name: value}."""
    arch = gdb.selected_frame().architecture().name()
    ctx = t["ctx"]
    try:
        sp = _int(ctx["sp"])
    except gdb.error:
        raise gdb.GdbError("asyncstd: this build switches with ucontext; not supported here")
    inferior = gdb.selected_inferior()
    ulong = gdb.lookup_type("unsigned long")

    def word(i):
        mem = inferior.read_memory(sp + 8 * i, 8)
        return int.from_bytes(bytes(mem), "little")

    if "x86-64" in arch:
        # switch_x86_64.S: FP control, r15, r14, r13, r12, rbx, rbp, return address
        return {"rsp": sp + 64, "rbp": word(6), "rip": word(7), "rbx": word(5),
                "r12": word(4), "r13": word(3), "r14": word(2), "r15": word(1)}
    if "aarch64" in arch:
        # switch_aarch64.S: x19..x28, x29, x30, d8..d15, fpcr in a 176-byte frame
        regs = {"sp": sp + 176, "x29": word(10), "x30": word(11), "pc": word(11)}
        for i in range(10):
            regs["x%d" % (19 + i)] = word(i)
        return regs
    raise gdb.GdbError("asyncstd: no context layout for %s" % arch)


class AsyncTask(gdb.Command):
    """Run a command on a parked task's stack: async-task ID|NAME COMMAND (e.g. async-task 3 bt)."""

    def __init__(self):
        super().__init__("async-task", gdb.COMMAND_STACK)

    def invoke(self, arg, from_tty):
        parts = arg.split(None, 1)
        if len(parts) < 2:
            raise gdb.GdbError("usage: async-task ID|NAME COMMAND   (for example: async-task 3 bt)")
        want, cmd = parts[0], parts[1]
        for t, wid, started in tasks():
            if want.isdigit():
                if _int(t["id"]) != int(want):
                    continue
            elif _string(t["name"].address, 16) != want:
                continue
            state = _int(t["state"])
            if not started or int(t["stack"]) == 0:
                raise gdb.GdbError("asyncstd: task %s has not started: it has no stack yet" % want)
            if STATES.get(state) not in ("parked", "ready"):
                raise gdb.GdbError("asyncstd: task %s is %s: its stack is its worker thread's"
                                   % (want, STATES.get(state, "?")))
            regs = _saved_registers(t)
            gdb.execute("frame 0", to_string=True)
            frame = gdb.selected_frame()
            old = {r: int(frame.read_register(r)) for r in regs}
            try:
                for r, v in regs.items():
                    gdb.execute("set $%s = 0x%x" % (r, v), to_string=True)
                gdb.execute(cmd, from_tty)
            finally:
                gdb.execute("frame 0", to_string=True)
                for r, v in old.items():
                    gdb.execute("set $%s = 0x%x" % (r, v), to_string=True)
            return
        raise gdb.GdbError("asyncstd: no task %s" % want)


InfoAsyncTasks()
AsyncTask()
