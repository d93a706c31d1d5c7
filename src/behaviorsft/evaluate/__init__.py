"""Evaluation: run a model over a bench, score it, combine runs, and report.

* ``runner``   — ``run_eval(EvalConfig)``: prompts, model calls, a resumable RUN folder
* ``metrics``  — pure scoring functions (Macro F1, averages, CIs, false alarms, misses)
* ``ensemble`` — majority vote over several RUN folders
* ``hard``     — BehaviorBench-Hard: tasks that several models fail
* ``report``   — the paper's Tables 2, 3 and 4 and the Figure 5 radar plot
"""
