"""Flow ``contract-pipeline``: validate -> ingest -> [fit] -> score -> verify -> optimize ->
[evaluate against the labels] -> summarise -> report, every step audited."""

from __future__ import annotations

from prefect import flow
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from flows.build_report import BuildReportParams, build_report
from flows.fit_reward_models import FitRewardModelsParams, fit_reward_models_with
from flows.ingest_dataset import IngestDatasetParams, ingest_dataset
from flows.optimize_policy import OptimizePolicyParams, optimize_policy
from flows.score_responses import ScoreResponsesParams, score_responses_with
from flows.validate_contract import ValidateContractParams, validate_contract
from ops.access import guard
from ops.cancel import cancellation_reason, shielded
from ops.config import PipelineConfig
from ops.confinement import confined
from rlhf_core.errors import first_line
from rlhf_core.remote import EndpointConfig
from tasks.checks import check_scores_quality, verify_scores_with_sql
from tasks.contract import record_contract_use
from tasks.evaluate import evaluate_agreement
from tasks.events import emit_run_rates
from tasks.remote import score_remote
from tasks.reporting import publish_score_summary
from tasks.runs import finish_run, record_run_outcome, start_run


class ContractPipelineParams(BaseModel):
    """Parameters of ``contract-pipeline``.

    Attributes:
        contract: Contract YAML path.
        data: Data file or directory.
        adapter: Adapter name (None: normalised responses Parquet, as the generator writes).
        mapping: Mapping file for the generic adapter.
        split: Split of a Hugging Face dataset folder (``data/<split>-*.parquet``) read through
            ``mapping`` (None: the mapping's own, else ``train``).
        run_id: Run id (re-running an id replaces its partitions).
        lake_root: Lake root.
        dry_run: Accept an unapproved contract.
        config: Pipeline settings (quality threshold, shards, Dask cluster).
        remote_scoring: Optional reward-model endpoint whose score becomes a response column
            (a contract input) before scoring.
        remote_token_block: Prefect Secret block holding the endpoint's bearer token.
        reward_model_criteria: Preference criteria to fit Bradley–Terry models for before scoring
            (their ``rm_<criterion>`` columns become contract inputs); empty: no fitting.
        optimize: Compute the Pareto front, the constrained KL policy and the DPO pairs.
        kl_cost_column: Scores column the KL policy constrains in expectation.
        kl_budget: The policy's expected-cost budget (None: midway between the cheapest
            achievable and the reference policy's expected cost).
        evaluate: Compare the reward with the data's preference labels (``agreement`` and
            ``disagreements``) whenever the run has labelled pairs.
        evaluation_resamples: Bootstrap resamples over prompts for the agreement intervals.
        token: Run token (``rlhf-wizard access token``); needed once an access policy is
            installed (docs/security.md). Shown to anyone who can read the run's parameters:
            prefer ``token_block`` for schedules.
        token_block: Name of a Prefect ``Secret`` block holding the run token.
    """

    model_config = ConfigDict(extra="forbid")

    contract: str
    data: str
    adapter: str | None = None
    mapping: str | None = None
    split: str | None = None
    run_id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
    lake_root: str = ".wizard"
    dry_run: bool = False
    config: PipelineConfig = PipelineConfig()
    remote_scoring: EndpointConfig | None = None
    remote_token_block: str | None = None
    reward_model_criteria: list[str] = Field(default_factory=list)
    optimize: bool = True
    kl_cost_column: str = "penalty"
    kl_budget: float | None = Field(default=None, ge=0.0)
    evaluate: bool = True
    evaluation_resamples: int = Field(default=1000, ge=0, le=100_000)
    token: SecretStr | None = None
    token_block: str | None = None


@flow(name="contract-pipeline", log_prints=True)
def contract_pipeline(params: ContractPipelineParams) -> dict:
    """The main job: one governed scoring run, from contract to queryable, audited results."""
    params = confined(params, "contract-pipeline", data=("contract", "data", "mapping"))
    guard(params, "run", contract=params.contract, replaces=True)
    start_run(params.run_id, "contract-pipeline", params.lake_root, params.model_dump(mode="json"))
    counts: dict[str, int] = {}
    try:
        contract = validate_contract(ValidateContractParams(
            contract=params.contract, dry_run=params.dry_run, lake_root=params.lake_root))
        record_contract_use(contract["hash"], params.run_id, params.lake_root, params.dry_run)
        ingest = ingest_dataset(IngestDatasetParams(
            source=params.data, adapter=params.adapter, mapping=params.mapping, split=params.split,
            run_id=params.run_id,
            lake_root=params.lake_root, max_failure_rate=params.config.quality.max_failure_rate,
            part_rows=params.config.scoring.shard_rows, contract=params.contract))
        counts.update(rows_in=ingest["rows_in"], accepted=ingest["accepted"],
                      quarantined=ingest["quarantined"])
        if params.remote_scoring is not None:
            remote = score_remote(params.run_id, params.remote_scoring, params.lake_root,
                                  token_secret_block=params.remote_token_block)
            counts["remote_scored"] = remote["rows_scored"]
        response_paths = ingest["response_paths"]
        if params.reward_model_criteria:
            fitted = fit_reward_models_with(FitRewardModelsParams(
                run_id=params.run_id, lake_root=params.lake_root,
                criteria=params.reward_model_criteria), params.config.dask, rows=ingest["accepted"])
            response_paths = fitted["response_paths"]
        scored = score_responses_with(ScoreResponsesParams(
            contract=params.contract, contract_hash=contract["hash"], inputs=response_paths,
            run_id=params.run_id, lake_root=params.lake_root,
            shard_rows=params.config.scoring.shard_rows), params.config.dask, rows=ingest["accepted"])
        counts["scored"] = scored["rows"]
        quality = check_scores_quality(scored["paths"], params.run_id, params.lake_root)
        verified = (verify_scores_with_sql(params.contract, response_paths, scored["paths"],
                                           params.lake_root)
                    if params.config.scoring.differential_check else None)
        optimized = (optimize_policy(OptimizePolicyParams(
            contract=params.contract, run_id=params.run_id, lake_root=params.lake_root,
            cost_column=params.kl_cost_column, budget=params.kl_budget)) if params.optimize else None)
        if optimized:
            counts["pairs"] = optimized["pairs"]["pairs"]
        evaluated = (evaluate_agreement(params.contract, params.run_id, params.lake_root,
                                        n_resamples=params.evaluation_resamples)
                     if params.evaluate and ingest.get("preferences") else None)
        if evaluated:
            counts["evaluated_pairs"] = evaluated["pairs"]
        summary = publish_score_summary(params.run_id, params.lake_root, scored["paths"],
                                        ingest=ingest, contract=contract, optimization=optimized,
                                        agreement=evaluated)
        emit_run_rates(params.run_id, "contract-pipeline", counts, summary["stats"])
    except BaseException as exc:
        # Ctrl-C / SIGTERM / a cancel raise BaseExceptions that are not failures of the run. The
        # outcome is recorded without a task: the engine may be shutting down.
        status = "cancelled" if cancellation_reason(exc) else "failed"
        with shielded():  # a second Ctrl-C must not leave the run recorded as running
            record_run_outcome(params.run_id, params.lake_root, status, counts,
                               error=cancellation_reason(exc) or first_line(exc))
        raise
    finish_run(params.run_id, params.lake_root, "completed", counts)
    report = build_report(BuildReportParams(run_id=params.run_id, lake_root=params.lake_root))
    return {"run_id": params.run_id, "contract": contract, "ingest": ingest, "scores": scored,
            "optimization": optimized, "agreement": evaluated,
            "quality": quality, "differential": verified, "summary": summary["summary_markdown"],
            "report": report["path"]}
