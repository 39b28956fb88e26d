"""Value types at the bottom of the layers: what a plan and a run are.

Plans (`plans.py`: Change, FieldChange, Plan, Counts) and runs (`runs.py`: Trigger,
Outcome, RunResult) are frozen values that the engine produces, the store records, and
every front end renders. They import nothing of the reconciler but its models, so the
engine, the store, the scheduler and the front ends can all use them without an import
cycle (as kopf keeps its value types in `_cogs/structs`).
"""
