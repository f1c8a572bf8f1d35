// What the council page shows, folded from the council's event stream: pure, no DOM.
// The same rules as the server's fold (council.deliberation.fold), plus the streamed text.

export const EVENT_TYPES = [
  "council.reset",
  "council.submitted",
  "council.started",
  "stage.started",
  "model.started",
  "model.delta",
  "model.completed",
  "model.failed",
  "model.skipped",
  "review.parsed",
  "stage.progress",
  "stage.completed",
  "council.cancel_requested",
  "council.skip_requested",
  "council.completed",
  "council.failed",
  "council.cancelled",
];
export const TERMINAL = new Set(["council.completed", "council.failed", "council.cancelled"]);
const FINISHED = new Set(["completed", "failed", "skipped"]);

/** A council nobody has told us anything about yet. */
export function emptyView(councilId) {
  return {
    councilId,
    lastSeq: 0,
    status: "queued",
    prompt: "",
    members: [],
    chairman: "",
    createdAt: null,
    finishedAt: null,
    stage: 0,
    stages: {},
    ballots: {},
    aggregate: [],
    skipRequests: new Set(),
    cancelRequested: false,
    failure: null,
    result: null,
    agedOut: false,
  };
}

function newRun(model) {
  return {
    model,
    status: "pending",
    attempt: 0,
    text: "",
    tokens: 0,
    latencyMs: null,
    ttftMs: null,
    usage: null,
    error: null,
    errorKind: null,
    retrying: false,
    version: 0,
  };
}

function stageOf(view, number) {
  if (!view.stages[number]) view.stages[number] = { stage: number, members: [], runs: {}, startedAt: null, completedAt: null };
  return view.stages[number];
}

function runOf(view, number, model) {
  const stage = stageOf(view, number);
  if (!stage.runs[model]) {
    stage.runs[model] = newRun(model);
    if (!stage.members.includes(model)) stage.members.push(model);
  }
  return stage.runs[model];
}

function touch(run) {
  run.version += 1;
}

/** Fold one event into the view; false when it was seen already (a repeat after a reconnect). */
export function apply(view, event) {
  if (event.type !== "council.reset" && event.seq <= view.lastSeq) return false;
  view.lastSeq = Math.max(view.lastSeq, event.seq);
  const d = event.data;
  switch (event.type) {
    case "council.reset":
      resetTo(view, d.snapshot);
      break;
    case "council.submitted":
      view.prompt = d.prompt;
      view.members = d.members;
      view.chairman = d.chairman;
      view.createdAt = event.ts;
      break;
    case "council.started":
      view.status = "running";
      view.members = d.members;
      view.chairman = d.chairman;
      break;
    case "stage.started": {
      view.status = "running";
      view.stage = Math.max(view.stage, d.stage);
      const stage = stageOf(view, d.stage);
      stage.startedAt = stage.startedAt ?? event.ts;
      for (const model of d.members) runOf(view, d.stage, model);
      break;
    }
    case "model.started": {
      const run = runOf(view, d.stage, d.model);
      if (FINISHED.has(run.status) || d.attempt < run.attempt) break;
      if (d.attempt > run.attempt) {
        run.text = ""; // a superseded attempt: its words are not the answer
        run.attempt = d.attempt;
      }
      run.tokens = 0;
      run.status = "generating";
      touch(run);
      break;
    }
    case "model.delta": {
      const run = runOf(view, d.stage, d.model);
      if (FINISHED.has(run.status) || d.attempt < run.attempt) break;
      if (d.attempt > run.attempt) {
        run.text = "";
        run.attempt = d.attempt;
      }
      run.text += d.text;
      run.tokens = d.token_count;
      run.status = "generating";
      touch(run);
      break;
    }
    case "model.completed": {
      const run = runOf(view, d.stage, d.model);
      if (FINISHED.has(run.status)) break;
      Object.assign(run, {
        status: "completed",
        attempt: Math.max(run.attempt, d.attempt),
        text: d.text,
        tokens: d.token_count || d.usage.completion_tokens,
        latencyMs: d.latency_ms,
        ttftMs: d.ttft_ms ?? null,
        usage: d.usage,
        error: null,
        errorKind: null,
        retrying: false,
      });
      touch(run);
      break;
    }
    case "model.failed": {
      const run = runOf(view, d.stage, d.model);
      if (FINISHED.has(run.status)) break;
      Object.assign(run, { error: d.message, errorKind: d.kind, retrying: d.retrying });
      if (!d.retrying) run.status = "failed";
      touch(run);
      break;
    }
    case "model.skipped": {
      const run = runOf(view, d.stage, d.model);
      if (FINISHED.has(run.status)) break;
      run.status = "skipped";
      run.error = d.reason === "requested" ? "skipped on request" : `skipped: ${d.reason.replace("_", " ")}`;
      run.retrying = false;
      touch(run);
      break;
    }
    case "review.parsed":
      if (!view.ballots[d.reviewer]) view.ballots[d.reviewer] = d;
      break;
    case "stage.completed": {
      const stage = stageOf(view, d.stage);
      stage.completedAt = stage.completedAt ?? event.ts;
      if (d.aggregate) view.aggregate = d.aggregate;
      break;
    }
    case "council.cancel_requested":
      view.cancelRequested = true;
      break;
    case "council.skip_requested":
      view.skipRequests.add(`${d.stage}:${d.model}`);
      break;
    case "council.completed":
      view.status = "completed";
      view.result = d.result;
      view.finishedAt = event.ts;
      break;
    case "council.failed":
      view.status = "failed";
      view.failure = { kind: d.kind, reason: d.reason };
      view.finishedAt = event.ts;
      break;
    case "council.cancelled":
      view.status = "cancelled";
      view.failure = { kind: "cancelled", reason: d.reason };
      view.finishedAt = event.ts;
      break;
    default:
      break; // stage.progress and types newer than this page: the view needs nothing from them
  }
  return true;
}

/** The log no longer holds the council's first events: start again from what the server says it is now. */
function resetTo(view, snapshot) {
  const fresh = emptyView(view.councilId);
  fresh.lastSeq = view.lastSeq;
  fresh.agedOut = true;
  Object.assign(view, fresh);
  if (snapshot.final_answer) {
    fromResult(view, snapshot);
    return;
  }
  view.status = snapshot.status;
  view.members = snapshot.members;
  view.chairman = snapshot.chairman;
  view.createdAt = snapshot.created_at;
  if (snapshot.error) view.failure = snapshot.error;
}

/** Fill the view from a completed council's result (all a snapshot keeps of it). */
export function fromResult(view, result) {
  view.status = result.status;
  view.prompt = result.prompt;
  view.result = result;
  view.createdAt = result.metadata.created_at;
  view.finishedAt = result.metadata.completed_at;
  view.chairman = result.stage3.requested_chairman;
  const answers = result.stage1.answers;
  view.members = [...Object.keys(answers), ...Object.keys(result.stage1.failed)];
  for (const [model, answer] of Object.entries(answers)) {
    Object.assign(runOf(view, 1, model), {
      status: "completed",
      text: answer.text,
      tokens: answer.usage.completion_tokens,
      latencyMs: answer.latency_ms,
      ttftMs: answer.ttft_ms,
      usage: answer.usage,
    });
  }
  for (const [model, why] of Object.entries(result.stage1.failed)) Object.assign(runOf(view, 1, model), { status: "failed", error: why });
  for (const [reviewer, review] of Object.entries(result.stage2.reviews)) {
    Object.assign(runOf(view, 2, reviewer), { status: "completed", text: review.text });
    view.ballots[reviewer] = { reviewer, labels: review.labels, ranking: review.ranking, parse_ok: review.parse_ok, method: review.method };
  }
  for (const [model, why] of Object.entries(result.stage2.failed)) Object.assign(runOf(view, 2, model), { status: "failed", error: why });
  view.aggregate = result.stage2.aggregate;
  Object.assign(runOf(view, 3, result.stage3.chairman_model), { status: "completed", text: result.stage3.synthesis });
  view.stage = 3;
}

/** Every run of the council, stage by stage. */
export function allRuns(view) {
  return Object.values(view.stages).flatMap((stage) => Object.values(stage.runs));
}

/** The numbers of the progress header. */
export function progress(view) {
  const count = (number, status) => Object.values(view.stages[number]?.runs ?? {}).filter((r) => status.has(r.status)).length;
  const members = view.stages[1]?.members.length || view.members.length;
  const reviewers = view.stages[2]?.members.length || 0;
  const runs = allRuns(view);
  return {
    answered: count(1, new Set(["completed"])),
    members,
    reviewed: count(2, new Set(["completed"])),
    reviewers,
    tokens: runs.reduce((sum, run) => sum + (run.tokens || 0), 0),
    costUsd: view.result ? view.result.metadata.total.cost_usd : runs.reduce((sum, run) => sum + (run.usage?.cost_usd || 0), 0),
  };
}

export const STAGE_NAMES = { 0: "Queued", 1: "Stage 1 · First opinions", 2: "Stage 2 · Peer review", 3: "Stage 3 · Synthesis" };

/** Whether the member can still be skipped in the stage under way. */
export function skippable(view, stageNumber, run) {
  return (
    !TERMINAL.has(`council.${view.status}`) &&
    view.stage === stageNumber &&
    !view.stages[stageNumber]?.completedAt &&
    (run.status === "pending" || run.status === "generating") &&
    !view.skipRequests.has(`${stageNumber}:${run.model}`)
  );
}
