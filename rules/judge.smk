# Step 6: compliance judgments per arm, and alignment-faking reasoning on hidden scratchpads.


def compliance_inputs(w):
    inputs = {
        "samples": f"{RESULTS}/{w.exp}/samples/{w.arm}.parquet",
        "queries": f"{RESULTS}/{w.exp}/queries.parquet",
        "code": code("alignment_faking.judge_compliance"),
    }
    if exp(w).judges.compliance.name == "rubric" and not judge_endpoint(w, "compliance"):
        inputs["model"] = model_folder(judge_model(w, "compliance"))
    return inputs


rule judge_compliance:
    input:
        unpack(compliance_inputs),
    output:
        f"{RESULTS}/{{exp}}/judgments/{{arm}}.compliance.parquet",
    params:
        judge=lambda w: as_dict(exp(w).judges.compliance),
        sampling=lambda w: as_dict(exp(w).sampling),
        engine=engine_params,
        endpoint=lambda w: endpoint_params(judge_endpoint(w, "compliance")),
        seed=CFG.seed,
    log:
        "logs/{exp}/judge_compliance_{arm}.log",
    threads: lambda w: HEAVY_THREADS if "model" in compliance_inputs(w) else 1
    script:
        "../scripts/judge_compliance.py"


rule judge_af:
    input:
        samples=f"{RESULTS}/{{exp}}/samples/{{arm}}.parquet",
        model=lambda w: model_input(judge_model(w, "af_reasoning"), judge_endpoint(w, "af_reasoning")),
        code=code("alignment_faking.judge_af"),
    output:
        f"{RESULTS}/{{exp}}/judgments/{{arm}}.af.parquet",
    params:
        judge=lambda w: as_dict(exp(w).judges.af_reasoning),
        engine=engine_params,
        endpoint=lambda w: endpoint_params(judge_endpoint(w, "af_reasoning")),
        seed=CFG.seed,
    log:
        "logs/{exp}/judge_af_{arm}.log",
    threads: lambda w: 1 if judge_endpoint(w, "af_reasoning") else HEAVY_THREADS
    script:
        "../scripts/judge_af.py"
