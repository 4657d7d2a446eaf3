"""The Ray engine of :func:`~digiworm.screen.run_screen`: chunks sent to actors.

Each actor (one CPU) loads the atlas once, builds its own base models and wild-type references
and keeps its compiled simulators between chunks; the driver hands out the chunks not yet done
and writes each result as it comes back, so an interrupted screen resumes from the chunks on
disk whichever engine ran them. The actors compute with :func:`chunk_phenotypes`, as the local
engine does, in the driver's floating-point precision, so both engines give the same numbers on
the same hardware.

On a cluster, start Ray there (for Slurm, Ray's own guide: ``ray start --head`` on the first
node and ``ray start --address HEAD:6379`` on the others, from the job script) and pass
``--engine ray --address auto`` from a node of the job.
"""

from __future__ import annotations

__all__ = ["ray_results"]


def _actor_class(ray):
    @ray.remote(num_cpus=1)
    class ScreenWorker:
        """One worker: the atlas, the base models and the wild-type references, kept."""

        def __init__(self, readouts, duration_s, behaviour_duration_s, x64, batch):
            import jax

            jax.config.update("jax_enable_x64", x64)
            from .. import atlas as atlas_mod
            from ._run import _References

            self.atlas = atlas_mod.load()
            self.args = (readouts, duration_s, behaviour_duration_s)
            self.refs = _References(self.atlas, batch)

        def run(self, chunk):
            from ._run import chunk_phenotypes

            readouts, duration_s, behaviour_duration_s = self.args
            return chunk_phenotypes(chunk, self.atlas, self.refs, readouts, duration_s,
                                    behaviour_duration_s)  # fmt: skip

    return ScreenWorker


def ray_results(todo, readouts, duration_s, behaviour_duration_s, address, workers, batch):
    """Yield ``(path, phenotypes)`` for each chunk of ``todo``, as the actors finish them."""
    import jax

    from .._ray import import_ray, ray_session

    import_ray()  # no Ray: fail before anything starts
    if not todo:
        return
    with ray_session(address) as ray:
        n = workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
        worker = _actor_class(ray)
        x64 = bool(jax.config.jax_enable_x64)
        actors = [worker.remote(readouts, duration_s, behaviour_duration_s, x64, batch)
                  for _ in range(min(n, len(todo)))]  # fmt: skip
        pending = {}
        queue = list(todo)
        for actor in actors:
            if queue:
                path, chunk = queue.pop(0)
                pending[actor.run.remote(chunk)] = (actor, path)
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            actor, path = pending.pop(ready[0])
            frame = ray.get(ready[0])
            if queue:
                next_path, chunk = queue.pop(0)
                pending[actor.run.remote(chunk)] = (actor, next_path)
            yield path, frame
