"""Run ensemble-python's own loader on ensemble.yaml files; print one JSON verdict per file.

Runs inside the virtualenv that ``tests/compat/ensemble_python.py`` creates (ensemble-python
from PyPI and its dependencies, no Flux). ``ensemble run --executor minicluster`` loads a
file with ``load_config`` (jsonschema, then the Rule/Action checks, executing ``custom``) and
then checks every trigger against the MiniCluster member's ``rules_supported``; this script
does both, importing the member class with an empty stand-in for Flux's Python bindings
(imported there but only used once the member runs). Each file is checked in a forked child,
so one file's ``custom`` code cannot affect the next.
Usage: python ensemble_python_loader.py FILE...
"""
import json
import os
import sys
import types


def _stub_flux() -> None:
    for name in ("flux", "flux.constants", "flux.job", "flux.message"):
        sys.modules[name] = types.ModuleType(name)


def _verdict(path: str) -> dict:
    import ensemble.config as config
    from ensemble.members.flux.minicluster import FluxMiniClusterQueue

    try:
        loaded = config.load_config(path)
        loaded.check_supported(FluxMiniClusterQueue.rules_supported)
    except BaseException as err:  # every way the loader refuses a file (SystemExit included)
        return {"path": path, "accepted": False, "error": f"{type(err).__name__}: {str(err)[:300]}"}
    return {"path": path, "accepted": True, "error": ""}


def main(paths: list[str]) -> None:
    _stub_flux()
    import ensemble
    import ensemble.config  # noqa: F401  (imported once, before forking)
    import ensemble.members.flux.minicluster  # noqa: F401

    print(json.dumps({"version": getattr(ensemble, "__version__", "")}), flush=True)
    for path in paths:
        read, write = os.pipe()
        child = os.fork()
        if child == 0:
            os.close(read)
            with os.fdopen(write, "w") as out:
                out.write(json.dumps(_verdict(path)))
            os._exit(0)
        os.close(write)
        with os.fdopen(read) as pipe:
            reply = pipe.read()
        os.waitpid(child, 0)
        print(reply or json.dumps({"path": path, "accepted": False, "error": "loader died"}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
