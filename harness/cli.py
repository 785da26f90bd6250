"""`showdown`: run benchmarks, print reports, bring a cluster up by hand."""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from functools import partial
from pathlib import Path

from rich.markup import escape

from harness.backends.choice import CHOICES as BACKEND_CHOICES
from harness.support.console import console
from harness.support.errors import ResultsError, ShowdownError, WorkloadError, storage_error
from harness.support.paths import CACHE, RESULTS, WORKLOADS
from harness.workload import files as workload_mod
from harness.workload.schema import Workload

DEFAULT_WORKLOAD = WORKLOADS / "fraud-default.yaml"
UP_STATE = CACHE / "up.json"


def _rows(spec: str | None, wl: Workload) -> list[str]:
    """`--engines a,b`: those rows of the workload, each checked to be one (exit 2); all without it."""
    rows = spec.split(",") if spec else list(wl.engines)
    unknown = [e for e in rows if e not in wl.engines]
    if unknown:
        raise WorkloadError(f"--engines: {', '.join(unknown)} not in the workload's engines ({', '.join(wl.engines)})")
    return rows


def cmd_run(args: argparse.Namespace) -> int:
    from harness.backends.choice import choose
    from harness.present import report
    from harness.results import store
    from harness.run import runner

    store.check_room(Path(args.results))
    wl, text = workload_mod.load(args.workload)
    engines = _rows(args.engines, wl)
    if args.repeat > 1:
        return _run_repeated(args, wl, text, engines)
    run_dir = runner.run(wl, str(args.workload), text, Path(args.results), choose(args.backend, args.cluster),
                         engines, args.keep_records)
    report.write_report(run_dir)
    console.print()
    report.print_summary(run_dir.summary, console)
    console.print(f"\nsummary: {run_dir.path / 'summary.json'}")
    return 0 if run_dir.summary.status == "complete" else 1


def _run_repeated(args: argparse.Namespace, wl: Workload, text: str, engines: list[str] | None) -> int:
    from harness.backends.choice import choose
    from harness.present import repeat, report
    from harness.results import layout
    from harness.results.schema import Summary
    from harness.run import runner

    # Chosen once: every run of the set on the same backend.
    backend = choose(args.backend, args.cluster)
    out = layout.new_folder(Path(args.results), f"{wl.name}-x{args.repeat}")
    runs: list[tuple[str, Summary]] = []
    for i in range(args.repeat):
        console.rule(f"[bold]run {i + 1} of {args.repeat}")
        run_dir = runner.run(wl, str(args.workload), text, out, backend, engines, args.keep_records)
        report.write_report(run_dir)
        console.print()
        report.print_summary(run_dir.summary, console)
        runs.append((run_dir.path.name, run_dir.summary))
        # Rewritten after every run, so an interrupted set still leaves what it measured.
        result = repeat.aggregate(runs, planned=args.repeat)
        (out / layout.REPEAT).write_text(json.dumps(result, indent=2))
    console.print()
    console.print(repeat.table(result))
    console.print(f"\nrepeat: {out / layout.REPEAT} (each run's folder beside it)")
    return 0 if all(s.status == "complete" for _, s in runs) else 1


def cmd_report(args: argparse.Namespace) -> int:
    from harness.present import report
    from harness.results import layout
    from harness.results.read import load_summary

    path = Path(args.dir)
    summary = load_summary(path)
    folder = path.parent if path.is_file() else path
    if not summary.engines:
        source = path if path.is_file() else path / layout.SUMMARY
        raise ResultsError(f"{source}: {report.no_rows(summary, folder.name)}")
    report.print_summary(summary, console)
    html_page, md_page = report.write_files(folder, summary, console)
    console.print(f"\nwritten: {html_page} (one self-contained page) and {md_page}")
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from harness.backends import cluster_file

    cluster = cluster_file.load(args.cluster)[0] if args.cluster else None
    if cluster is not None:
        console.print(f"[green]✓[/] {args.cluster}: cluster file of {cluster.name}, names under {cluster.prefix}-")
    for path in args.workloads:
        wl, _ = workload_mod.load(path)
        rows = _rows(args.engines, wl)
        problem = cluster_file.problem(cluster, wl, rows) if cluster is not None else None
        if problem:
            raise WorkloadError(f"{args.cluster} with {path}: {problem}")
        console.print(f"[green]✓[/] {path}: {wl.name}, {wl.rate:g} ev/s for {wl.duration_s:g} s, "
                      f"engines {', '.join(wl.engines)}, {len(wl.faults)} fault(s)")
    return 0


def cmd_up(args: argparse.Namespace) -> int:
    from harness.backends.local import LocalKafka
    from harness.support import procs

    if UP_STATE.exists():
        console.print(f"A cluster is already up ({UP_STATE}); `showdown down` first.")
        return 1
    wl, _ = workload_mod.load(args.workload)
    log_dir = CACHE / "up-logs"
    kafka = LocalKafka(wl.kafka, log_dir)
    try:
        kafka.start()
        kafka.create_topics(wl.kafka.partitions, [wl.kafka.transactions_topic, wl.kafka.decisions_topic])
    except BaseException:
        kafka.stop()
        raise
    # Leave the brokers running past this command: `down` stops them by PID.
    nodes = [{"pid": p.pid, "log": str(p.log)} for p in kafka.nodes.values()]
    for p in kafka.nodes.values():
        procs.detach(p)
    UP_STATE.write_text(json.dumps({"bootstrap": kafka.bootstrap, "nodes": nodes, "data": str(kafka.data_dir)}))
    console.print(f"Kafka is up at [bold]{kafka.bootstrap}[/] (topics {wl.kafka.transactions_topic}, "
                  f"{wl.kafka.decisions_topic}); logs in {log_dir}. Stop it with `showdown down`.")
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    import shutil

    import psutil

    from harness.backends import daemon

    stopped = daemon.stop_started_engine()
    if stopped:
        console.print(f"{stopped.capitalize()}: the Docker engine `showdown run --backend containers` started.")
    if not UP_STATE.exists():
        console.print("No broker is up.")
        return 0
    state = json.loads(UP_STATE.read_text())
    for node in state["nodes"]:
        pid = node["pid"]
        try:
            # Only a process that is still the broker we started: PIDs get reused.
            if "kafka.Kafka" not in " ".join(psutil.Process(pid).cmdline()):
                continue
            os.killpg(pid, signal.SIGTERM)
            psutil.Process(pid).wait(timeout=30)
        except psutil.TimeoutExpired:
            os.killpg(pid, signal.SIGKILL)
        except (psutil.NoSuchProcess, ProcessLookupError):
            pass
    shutil.rmtree(state["data"], ignore_errors=True)
    UP_STATE.unlink()
    console.print(f"Stopped Kafka at {state['bootstrap']}.")
    return 0


def cmd_setup(args: argparse.Namespace) -> int:
    from harness.backends.choice import choose
    from harness.engines import registry as engines
    from harness.provision import artifacts

    wl, _ = workload_mod.load(args.workload)
    artifacts.require_java()
    artifacts.jars("kafka")
    for name, options in wl.engines.items():
        engines.create(name, options).prepare()
    console.print(f"[green]✓[/] set up: Java, Kafka jars, engines {', '.join(wl.engines)}")
    backend = choose(args.backend)
    # Images are built here rather than inside the first run, where they would delay an engine's start.
    for line in backend.prepare([partial(engines.image, n) for n in wl.engines]):
        console.print(f"[green]✓[/] {backend.name} ({backend.why}): {line}")
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from harness.backends.choice import choose
    from harness.present import charts, report
    from harness.results import layout, store
    from harness.run import sweep

    store.check_room(Path(args.results))
    wl, text = workload_mod.load(args.workload)
    lines = [sweep.Line(e) for e in _rows(args.engines, wl)]
    if args.vary:
        varied = sweep.vary(wl, args.vary)
        # Beside the varied row, only the rows --engines names (the floor it is drawn against).
        lines = [line for line in lines if args.engines and line.row != varied[0].row] + varied
    backend = choose(args.backend, args.cluster)
    out = sweep.run(wl, str(args.workload), text, Path(args.results), lines, backend, report.write_report)
    console.print(f"\nsweep: {out / layout.SWEEP} (each step's run folder beside it)")
    if args.vary:
        chart = charts.vary(json.loads((out / layout.SWEEP).read_text()), out)
        if chart:
            console.print(f"chart: {chart.png}")
    return 0


def cmd_scale(args: argparse.Namespace) -> int:
    from harness.backends.choice import choose
    from harness.present import charts, report
    from harness.results import store
    from harness.run import scale

    store.check_room(Path(args.results))
    wl, text = workload_mod.load(args.workload)
    rows = _rows(args.engines, wl)
    nodes = _counts(args.nodes)
    out = scale.run(wl, str(args.workload), text, Path(args.results), rows, nodes, choose(args.backend),
                    report.write_report)
    chart = charts.scale(json.loads((out / scale.SCALE).read_text()), out)
    console.print(f"\nscale: {out / scale.SCALE} (each node count's sweep folder beside it)"
                  + (f"; chart: {chart.png}" if chart else ""))
    return 0


def _counts(text: str) -> list[int]:
    """`--nodes 1,2,4`: distinct whole numbers from 1 to 8, ascending."""
    try:
        counts = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        counts = []
    if not counts or any(not 1 <= c <= 8 for c in counts) or len(set(counts)) != len(counts):
        raise WorkloadError(f"--nodes {text}: node counts from 1 to 8, comma-separated, each once (e.g. 1,2,4)")
    return sorted(counts)


def cmd_compare(args: argparse.Namespace) -> int:
    from harness.present import compare, repeat

    a, b = repeat.load(Path(args.a)), repeat.load(Path(args.b))
    compare.print_comparison(a, b, args.a, args.b, console)
    return 0


def cmd_recommend(args: argparse.Namespace) -> int:
    from harness.present import recommend

    req = recommend.Requirements(args.p99_ms, args.exactly_once, args.state_hours, args.rate)
    recommend.print_recommendation(req, recommend.gather([Path(p) for p in args.results]), console)
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from harness.present import recommend

    if args.p99_ms is None and not args.exactly_once and args.state_hours is None and args.rate is None:
        raise WorkloadError("check: state at least one requirement (--p99-ms, --exactly-once, --state-hours, "
                            "--rate)")
    req = recommend.Requirements(args.p99_ms, args.exactly_once, args.state_hours, args.rate)
    evidence = recommend.gather([Path(p) for p in args.results])
    return 0 if recommend.check(req, evidence, list(dict.fromkeys(args.engine or [])), console) else 1


def cmd_compose(args: argparse.Namespace) -> int:
    from harness.backends import daemon
    from harness.run import compose

    console.print(f"Docker: {daemon.ensure_engine()}")
    env = compose.write(compose.Ports(args.kafka_port, args.flink_port, args.spark_port))
    console.print(f"[green]✓[/] {env} written. Start the stack with\n"
                  f"  docker-compose --env-file {env} -f {compose.COMPOSE_FILE} up -d\n"
                  f"Kafka at 127.0.0.1:{args.kafka_port}, Flink at http://127.0.0.1:{args.flink_port}, "
                  f"the Spark Master at http://127.0.0.1:{args.spark_port}.")
    return 0


def cmd_driver_bench(args: argparse.Namespace) -> int:
    from harness.run.selfbench import collector_max_rate, driver_max_rate

    wl, _ = workload_mod.load(args.workload)
    report = driver_max_rate(wl, args.rate, args.seconds)
    collector_max_rate(wl, report.sent)
    return 0


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0, got {text}")
    return value


def _whole(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None


def _count(text: str) -> int:
    value = _whole(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {text}")
    return value


def _nice(text: str) -> int:
    value = _whole(text)
    if not 0 <= value <= 19:
        raise argparse.ArgumentTypeError(f"must be a niceness from 0 (none) to 19, got {text}")
    return value


def _engine_nice_option(p: argparse.ArgumentParser) -> None:
    from harness.support.procs import ENGINE_NICE

    p.add_argument("--engine-nice", type=_nice, default=ENGINE_NICE, metavar="N",
                   help="niceness of the local brokers' and engines' processes, so that their CPU bursts do "
                        "not delay the load driver and the collector; 0 runs them beside the instrument at "
                        "the same priority (default: %(default)s; recorded with the results)")


def _requirements(p: argparse.ArgumentParser) -> None:
    p.add_argument("--exactly-once", action="store_true",
                   help="require no missing, duplicate or wrong decision, shown across an injected fault")
    p.add_argument("--state-hours", type=_positive, metavar="H",
                   help="require per-user state over a window of at least H hours (rules.window_s)")
    p.add_argument("--rate", type=_positive, metavar="EV_S", help="require a sweep to have found this rate "
                                                                   "sustainable")
    p.add_argument("results", nargs="+", help="run, repeat or sweep folders")


def _cluster_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cluster", metavar="FILE",
                   help="run on services that already exist, as this cluster file describes them (README, "
                        "\"Existing clusters\"), instead of starting any")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="showdown", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("run", help="run a workload against its engines and print the comparison table")
    r.add_argument("-w", "--workload", default=str(DEFAULT_WORKLOAD), help="workload YAML (default: %(default)s)")
    r.add_argument("--engines", help="comma-separated subset of the workload's engines")
    r.add_argument("--backend", choices=BACKEND_CHOICES,
                   help="where Kafka and the engines' clusters run: local processes, or containers built "
                        "here; auto: containers when a Docker engine answers or can be started, else local "
                        "(default: auto)")
    _cluster_option(r)
    r.add_argument("--results", default=str(RESULTS), help="folder for run output (default: %(default)s)")
    r.add_argument("--keep-records", action="store_true",
                   help="also write per engine an audit archive in Parquet: the inputs with where they landed, "
                        "every decision and window result received, the faults (results/README.md)")
    _engine_nice_option(r)
    r.add_argument("--repeat", type=_count, default=1, metavar="N",
                   help="run the workload N times in a row into one folder results/<time>-<name>-x<N>/ with "
                        "repeat.json: per engine and metric the median and min–max (default: %(default)s)")
    r.set_defaults(func=cmd_run)

    rep = sub.add_parser("report", help="print a finished (or partial) run's table again and write its "
                                        "report.html and report.md")
    rep.add_argument("dir", help="a results/<run> folder or its summary.json")
    rep.set_defaults(func=cmd_report)

    v = sub.add_parser("validate", help="check workload files (and a cluster file against them) without starting "
                                        "or reaching anything")
    v.add_argument("workloads", nargs="+")
    v.add_argument("--cluster", metavar="FILE", help="also check this cluster file, and that it gives what each "
                                                     "workload's rows and faults need")
    v.add_argument("--engines", help="with --cluster: only these rows (comma-separated), as a run's --engines")
    v.set_defaults(func=cmd_validate)

    up = sub.add_parser("up", help="start Kafka (per the workload) and leave it running")
    up.add_argument("-w", "--workload", default=str(DEFAULT_WORKLOAD))
    up.set_defaults(func=cmd_up)
    down = sub.add_parser("down", help="stop what `up` started, and a Docker engine the harness started")
    down.set_defaults(func=cmd_down)

    st = sub.add_parser("setup", help="install what the workload's clusters and engines need (cached), "
                                      "and build their images if the backend is containers")
    st.add_argument("--backend", choices=BACKEND_CHOICES, default="auto",
                    help="the backend to prepare for (default: %(default)s)")
    st.add_argument("-w", "--workload", default=str(DEFAULT_WORKLOAD))
    st.set_defaults(func=cmd_setup)

    sw = sub.add_parser("sweep", help="find each engine's highest sustainable rate (the workload's `sweep` "
                                      "section: rates, step length, p99 limit)")
    sw.add_argument("-w", "--workload", default=str(DEFAULT_WORKLOAD), help="workload YAML (default: %(default)s)")
    sw.add_argument("--engines", help="comma-separated subset of the workload's engines")
    sw.add_argument("--vary", metavar="ROW.OPTION=V1,V2,...",
                    help="sweep one row once per value of one of its options, e.g. "
                         "flink.checkpoint_interval_ms=100,500,1000 (the cost of exactly-once as a curve); "
                         "--engines then names the rows to run beside it, drawn as its floor")
    sw.add_argument("--backend", choices=BACKEND_CHOICES,
                    help="where Kafka and the engines' clusters run (default: auto)")
    _cluster_option(sw)
    sw.add_argument("--results", default=str(RESULTS), help="folder for the sweep's output (default: %(default)s)")
    _engine_nice_option(sw)
    sw.set_defaults(func=cmd_sweep)
    sc = sub.add_parser("scale", help="each engine's sustainable rate at each node count (the workload's `sweep` "
                                      "section at each count of --nodes): the capacity curve")
    sc.add_argument("-w", "--workload", default=str(DEFAULT_WORKLOAD), help="workload YAML (default: %(default)s)")
    sc.add_argument("--nodes", required=True, metavar="N1,N2,...",
                    help="node counts: processors, TaskManagers (their slots filled) or Spark Workers per engine")
    sc.add_argument("--engines", help="comma-separated subset of the workload's engines")
    sc.add_argument("--backend", choices=BACKEND_CHOICES,
                    help="where the clusters run (default: auto); per-core figures need containers' CPU limits")
    sc.add_argument("--results", default=str(RESULTS), help="folder for the output (default: %(default)s)")
    _engine_nice_option(sc)
    sc.set_defaults(func=cmd_scale)
    cmp = sub.add_parser("compare", help="two results side by side per engine: A, B, B − A, and whether the "
                                          "difference is outside the noise the repeats show")
    cmp.add_argument("a", help="a run folder (summary.json) or a repeat folder (repeat.json)")
    cmp.add_argument("b", help="the same for B")
    cmp.set_defaults(func=cmd_compare)

    rec = sub.add_parser("recommend", help="which engines meet the stated requirements on the evidence of the "
                                           "given results, with the figure and file behind each verdict")
    rec.add_argument("--p99-ms", type=_positive, required=True, metavar="MS", help="steady-state p99 limit in ms")
    _requirements(rec)
    rec.set_defaults(func=cmd_recommend)
    chk = sub.add_parser("check", help="a gate for CI: exit 0 when every named engine meets every requirement "
                                       "on the given results (the rules of recommend), 1 otherwise")
    chk.add_argument("--p99-ms", type=_positive, metavar="MS", help="steady-state p99 limit in ms")
    _requirements(chk)
    chk.add_argument("--engine", action="append", metavar="NAME",
                     help="an engine row that must pass (repeatable; default: every engine in the results)")
    chk.set_defaults(func=cmd_check)

    co = sub.add_parser("compose", help="build the images and write the config docker-compose.yml runs "
                                         "(.cache/compose/compose.env)")
    co.add_argument("--kafka-port", type=int, default=9094, help="Kafka's port on 127.0.0.1 (default: %(default)s)")
    co.add_argument("--flink-port", type=int, default=8081, help="Flink's REST/UI port (default: %(default)s)")
    co.add_argument("--spark-port", type=int, default=8080, help="the Spark Master's UI port (default: %(default)s)")
    co.set_defaults(func=cmd_compose)
    db = sub.add_parser("driver-bench", help="measure the load driver and the collector alone against a real broker")
    db.add_argument("-w", "--workload", default=str(WORKLOADS / "smoke.yaml"))
    db.add_argument("--rate", type=float, default=50_000)
    db.add_argument("--seconds", type=float, default=20)
    db.set_defaults(func=cmd_driver_bench)
    return p


def main(argv: list[str] | None = None) -> int:
    from harness.support import guard, interrupt, procs

    args = parser().parse_args(argv)
    interrupt.install()
    try:
        if args.func in (cmd_run, cmd_sweep, cmd_driver_bench, cmd_up):
            # Measured beside what a killed run left running, figures would be wrong.
            for line in guard.clean_leftovers():
                console.print(f"[yellow]{escape(line)}[/]")
        if args.func in (cmd_run, cmd_sweep, cmd_driver_bench):  # `up` leaves its broker running on purpose
            guard.guard()
        if hasattr(args, "engine_nice"):
            procs.set_engine_nice(args.engine_nice)
        return int(args.func(args))
    except (ShowdownError, OSError) as e:
        # An OSError the user can act on is a full disk or a folder that cannot be written,
        # met midway (run and sweep check up front, but a disk can fill during a run).
        problem = e if isinstance(e, ShowdownError) else storage_error(e)
        if problem is None:
            raise
        # One line however long, for a log as for a terminal.
        console.print(f"[red]error:[/] {escape(str(problem))}", highlight=False, emoji=False, soft_wrap=True)
        return problem.exit_code
    except KeyboardInterrupt:
        console.print("\n[yellow]interrupted: stopped everything this run started[/]")
        return interrupt.EXIT_CODE
    finally:
        procs.stop_all()
        guard.release()


if __name__ == "__main__":
    sys.exit(main())
