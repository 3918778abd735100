
# Every command registers the policy library (sim/policy_hook.py) and the config composer
# (sim/config_hook.py) with the engine, in worker processes too (submitit, joblib), which
# unpickle a task without going through load_config.
import experiments.config  # noqa: F401, E402
import policies  # noqa: F401, E402
