rule table:
    """Mean ± std over seeds of every metric, per experiment, scenario and method (CSV and Markdown)."""
    input:
        metrics_paths=ALL_METRICS,
    output:
        out_csv=report(f"{RUN}/tables/summary.csv", category="Tables", caption="../report/table.rst"),
        out_md=f"{RUN}/tables/summary.md",
    params:
        step="report.write_table",
    log:
        f"{LOGS}/table.log",
    localrule: True
    script:
        "../scripts/step.py"


rule figure:
    """Forget, retain and test accuracy and the entropy MIA per method, one panel per experiment and scenario."""
    input:
        metrics_paths=ALL_METRICS,
    output:
        out_png=report(f"figures/{config['name']}/summary.png", category="Figures", caption="../report/summary_figure.rst"),
        out_pdf=f"figures/{config['name']}/summary.pdf",
    params:
        step="report.write_figure",
    log:
        f"{LOGS}/figure.log",
    localrule: True
    script:
        "../scripts/step.py"
