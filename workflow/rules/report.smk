# Tables and figures, built only from the runs' metrics.json artifacts, into figures/<name>/ (REPORT_OUTPUTS in
# common.smk). Changing the report block of the config re-runs only these rules.


rule table:
    """Mean ± std over seeds of every metric, and Δ to the oracle, per experiment, scenario and method."""
    input:
        metrics_paths=ALL_METRICS,
    output:
        out_csv=report(f"{FIG}/summary.csv", category="Tables", caption="../report/table.rst"),
        out_md=f"{FIG}/summary.md",
        out_tex=f"{FIG}/summary.tex",
    params:
        step=step("report.write_summary"),
    log:
        f"{LOGS}/table.log",
    localrule: True
    script:
        "../scripts/step.py"


rule figure:
    """One of the config's report.figures (unlearnbench.figures), mean ± sd over seeds."""
    input:
        metrics_paths=ALL_METRICS,
    output:
        out_png=report(f"{FIG}/{{figure}}.png", category="Figures", caption="../report/figure.rst"),
        out_pdf=f"{FIG}/{{figure}}.pdf",
    wildcard_constraints:
        figure="|".join(FIGURE_SPECS),
    params:
        step=step("report.write_figure"),
        spec=lambda w: FIGURE_SPECS[w.figure],
        experiments=EXPERIMENTS,
    log:
        f"{LOGS}/figure_{{figure}}.log",
    localrule: True
    script:
        "../scripts/step.py"


def match_rules():
    return REPORT.get("match") or [{"experiment": exp} for exp in EXPERIMENTS]


def scenario_settings():
    from unlearnbench.reported import scenario_setting

    return {
        exp: {s: scenario_setting(config["scenarios"][s], dataset_config(e["dataset"]).get("name", e["dataset"])) for s in scenarios_of(e)}
        for exp, e in EXPERIMENTS.items()
    }


rule reported:
    """The paper's reported values beside ours, with the difference and a verdict (unlearnbench.reported)."""
    input:
        metrics_paths=ALL_METRICS,
        reported_path=REPORT.get("reported", []),
    output:
        out_csv=report(f"{FIG}/reported_vs_reproduced.csv", category="Reported vs reproduced", caption="../report/reported.rst"),
        out_md=f"{FIG}/reported_vs_reproduced.md",
        out_tex=f"{FIG}/reported_vs_reproduced.tex",
        out_png=report(f"{FIG}/reported_vs_reproduced.png", category="Reported vs reproduced", caption="../report/reported.rst"),
        out_pdf=f"{FIG}/reported_vs_reproduced.pdf",
    params:
        step=step("report.write_comparison"),
        rules=match_rules(),
        settings=scenario_settings(),
    log:
        f"{LOGS}/reported.log",
    localrule: True
    script:
        "../scripts/step.py"


rule leaderboard:
    """Methods ranked by the leaderboard's score per scenario, and by their mean rank."""
    input:
        metrics_paths=ALL_METRICS,
    output:
        out_csv=f"{FIG}/leaderboard.csv",
        out_md=f"{FIG}/leaderboard.md",
        out_tex=f"{FIG}/leaderboard.tex",
        out_png=report(f"{FIG}/leaderboard.png", category="Leaderboard", caption="../report/leaderboard.rst"),
        out_pdf=f"{FIG}/leaderboard.pdf",
    params:
        step=step("report.write_leaderboard"),
        score=REPORT.get("leaderboard", {}).get("score"),
    log:
        f"{LOGS}/leaderboard.log",
    localrule: True
    script:
        "../scripts/step.py"
