
# Every command registers the policy library with the engine (sim/policy_hook.py), in worker
# processes too (submitit, joblib), which unpickle a task without going through load_config.
import policies  # noqa: F401, E402
