// s1c serve through the official `openai` npm client (v4), as an application uses it:
// chat, completions, streaming, n > 1, budget-forcing fields as extra keys and their aliases,
// reasoning fields, exact usage, logprobs, errors; greedy outputs equal `s1c generate`.
// Env: S1C_BIN, BASE_URL (http://host:port), MODEL (the model path), API_KEY, OPENAI_DIR
// (a folder whose node_modules holds openai). Prints one line per failed check and a tally.
import { createRequire } from "node:module";
import { execFileSync } from "node:child_process";
import path from "node:path";

const require = createRequire(path.join(process.env.OPENAI_DIR, "package.json"));
const OpenAI = require("openai");
const client = new OpenAI({ baseURL: `${process.env.BASE_URL}/v1`, apiKey: process.env.API_KEY, maxRetries: 0 });
const BIN = process.env.S1C_BIN, MODEL = process.env.MODEL;
let passed = 0, failed = 0;
function check(name, ok, detail = "") {
  if (ok) passed++;
  else { failed++; console.log(`FAIL ${name}: ${typeof detail === "string" ? detail : JSON.stringify(detail)}`); }
}
function generate(...args) {
  return JSON.parse(execFileSync(BIN, ["generate", "--model", MODEL, "--json", ...args], { encoding: "utf8" }));
}
const Q = "What is 2+2?";
const user = [{ role: "user", content: Q }];

// chat with budget forcing as extra keys == s1c generate with the same options
{
  const r = await client.chat.completions.create({ model: "m", messages: user, temperature: 0, max_thinking_tokens: 9, max_answer_tokens: 5 });
  const g = generate("--prompt", Q, "--think-max", "9", "--answer-max", "5");
  const m = r.choices[0].message;
  check("bf: reasoning_content == generate thinking", m.reasoning_content === g.thinking, [m.reasoning_content, g.thinking]);
  check("bf: reasoning == reasoning_content", m.reasoning === m.reasoning_content, m.reasoning);
  check("bf: content == generate answer", m.content === g.answer, [m.content, g.answer]);
  check("bf: usage.completion_tokens exact", r.usage.completion_tokens === g.tokens.length, [r.usage, g.tokens.length]);
  check("bf: usage.prompt_tokens exact", r.usage.prompt_tokens === g.prompt_tokens.length, [r.usage, g.prompt_tokens.length]);
  check("bf: reasoning_tokens", r.usage.completion_tokens_details.reasoning_tokens === 9, r.usage);
  check("bf: total", r.usage.total_tokens === r.usage.prompt_tokens + r.usage.completion_tokens, r.usage);
  check("bf: finish_reason (answer limit)", r.choices[0].finish_reason === "length", r.choices[0].finish_reason);
  check("bf: accounting", r.choices[0].budget_forcing?.thinking_tokens === 9 && r.choices[0].budget_forcing?.think_end_reason === "budget", r.choices[0]);
  check("object and id", r.object === "chat.completion" && r.id.startsWith("chatcmpl-"), r.object);

  // the same request streamed: the deltas add up to the same reasoning and content
  const s = await client.chat.completions.create({ model: "m", messages: user, temperature: 0, max_thinking_tokens: 9, max_answer_tokens: 5,
                                                  stream: true, stream_options: { include_usage: true } });
  let reasoning = "", reasoning2 = "", content = "", finish = null, usage = null, chunks = 0, role = null;
  for await (const ch of s) {
    chunks++;
    if (ch.usage) usage = ch.usage;
    for (const c of ch.choices) {
      if (c.delta.role) role = c.delta.role;
      reasoning += c.delta.reasoning_content ?? "";
      reasoning2 += c.delta.reasoning ?? "";
      content += c.delta.content ?? "";
      if (c.finish_reason) finish = c.finish_reason;
    }
  }
  check("stream: reasoning", reasoning === m.reasoning_content && reasoning2 === reasoning, [reasoning, m.reasoning_content]);
  check("stream: content", content === m.content, [content, m.content]);
  check("stream: role, finish", role === "assistant" && finish === "length", [role, finish]);
  check("stream: usage chunk", usage && usage.completion_tokens === r.usage.completion_tokens && usage.completion_tokens_details.reasoning_tokens === 9, usage);
  check("stream: several chunks", chunks > 3, chunks);
}

// max_tokens bounds thinking and answer together
{
  const r = await client.chat.completions.create({ model: "m", messages: user, temperature: 0, max_tokens: 6, max_thinking_tokens: 50 });
  check("max_tokens bounds thinking", r.usage.completion_tokens === 6 && r.choices[0].finish_reason === "length" && r.choices[0].message.content === "", [r.usage, r.choices[0]]);
  check("max_completion_tokens too", (await client.chat.completions.create({ model: "m", messages: user, temperature: 0, max_completion_tokens: 4, max_thinking_tokens: 50 })).usage.completion_tokens === 4);
}

// aliases of the thinking budget and reasoning_effort (the server runs with --effort-budgets 3,6,9)
for (const [name, extra, want] of [["thinking_budget", { thinking_budget: 4 }, 4], ["thinking_token_budget", { thinking_token_budget: 5 }, 5],
                                   ["thinking_budget_tokens", { thinking_budget_tokens: 6 }, 6], ["reasoning_budget_tokens", { reasoning_budget_tokens: 7 }, 7],
                                   ["thinking.budget_tokens", { thinking: { type: "enabled", budget_tokens: 8 } }, 8],
                                   ["reasoning_effort low", { reasoning_effort: "low" }, 3], ["reasoning_effort high", { reasoning_effort: "high" }, 9],
                                   ["effort + explicit budget", { reasoning_effort: "high", max_thinking_tokens: 2 }, 2]]) {
  const r = await client.chat.completions.create({ model: "m", messages: user, temperature: 0, max_answer_tokens: 2, ...extra });
  check(`alias ${name}`, r.usage.completion_tokens_details.reasoning_tokens === want && r.choices[0].budget_forcing.max_thinking_tokens === want, r.usage);
}

// plain chat (no budget forcing) == s1c generate --chat
{
  const r = await client.chat.completions.create({ model: "m", messages: user, temperature: 0, max_tokens: 12 });
  const g = generate("--chat", "--prompt", Q, "--max-tokens", "12");
  check("chat == generate --chat", r.choices[0].message.content === g.text && r.usage.completion_tokens === g.tokens.length, [r.choices[0].message.content, g.text]);
  check("plain chat: no reasoning", r.choices[0].message.reasoning_content == null, r.choices[0].message);
}

// multi-turn: an earlier turn's reasoning is not sent back
{
  const hist = [{ role: "user", content: "Hi" }, { role: "assistant", content: "<|im_start|>think\nlong thoughts\n<|im_start|>answer\nHello!" }, { role: "user", content: Q }];
  const plain = [{ role: "user", content: "Hi" }, { role: "assistant", content: "Hello!" }, { role: "user", content: Q }];
  const a = await client.chat.completions.create({ model: "m", messages: hist, temperature: 0, max_tokens: 3 });
  const b = await client.chat.completions.create({ model: "m", messages: plain, temperature: 0, max_tokens: 3 });
  check("history reasoning dropped", a.usage.prompt_tokens === b.usage.prompt_tokens && a.choices[0].message.content === b.choices[0].message.content, [a.usage, b.usage]);
}

// completions == s1c generate --special; streamed the same; echo; several prompts
{
  const P = "Once upon a time";
  const r = await client.completions.create({ model: "m", prompt: P, temperature: 0, max_tokens: 10 });
  const g = generate("--prompt", P, "--special", "--max-tokens", "10");
  check("completion == generate", r.choices[0].text === g.text && r.usage.completion_tokens === 10 && r.usage.prompt_tokens === g.prompt_tokens.length, [r.choices[0].text, g.text]);
  check("completion object", r.object === "text_completion" && r.choices[0].finish_reason === "length", r.object);
  let text = "";
  for await (const ch of await client.completions.create({ model: "m", prompt: P, temperature: 0, max_tokens: 10, stream: true })) text += ch.choices[0]?.text ?? "";
  check("completion stream", text === g.text, [text, g.text]);
  const e = await client.completions.create({ model: "m", prompt: P, temperature: 0, max_tokens: 10, echo: true });
  check("echo", e.choices[0].text === P + g.text, e.choices[0].text);
  const two = await client.completions.create({ model: "m", prompt: [P, "Hello"], temperature: 0, max_tokens: 4 });
  check("two prompts", two.choices.length === 2 && two.choices[0].text === g.text.slice(0, two.choices[0].text.length) && two.choices[1].index === 1, two.choices);
  const ids = await client.completions.create({ model: "m", prompt: g.prompt_tokens, temperature: 0, max_tokens: 10 });
  check("token-id prompt", ids.choices[0].text === g.text, ids.choices[0].text);
  const st = await client.completions.create({ model: "m", prompt: P, temperature: 0, max_tokens: 10, stop: [g.text.slice(3, 6)] });
  check("stop string", st.choices[0].text === g.text.slice(0, 3) && st.choices[0].finish_reason === "stop", [st.choices[0].text, g.text]);
}

// n > 1: one prefill, n samples with seeds seed, seed+1, ... == generate --samples
{
  const r = await client.chat.completions.create({ model: "m", messages: user, temperature: 0.9, seed: 7, n: 3, max_thinking_tokens: 6, max_answer_tokens: 3 });
  const g = generate("--prompt", Q, "--think-max", "6", "--answer-max", "3", "--samples", "3", "--temperature", "0.9", "--seed", "7");
  check("n=3 choices", r.choices.length === 3 && r.choices.map(c => c.index).join() === "0,1,2", r.choices.length);
  for (let i = 0; i < 3 && g.samples; i++)
    check(`n=3 sample ${i} == generate`, r.choices[i].message.reasoning_content === g.samples[i].thinking && r.choices[i].message.content === g.samples[i].answer,
          [r.choices[i].message, g.samples[i].thinking]);
  const total = g.samples ? g.samples.reduce((a, s) => a + s.tokens.length, 0) : -1;
  check("n=3 usage", r.usage.completion_tokens === total && r.usage.completion_tokens_details.reasoning_tokens === 18, [r.usage, total]);
  const s = await client.chat.completions.create({ model: "m", messages: user, temperature: 0.9, seed: 7, n: 3, max_thinking_tokens: 6, max_answer_tokens: 3, stream: true });
  const acc = ["", "", ""];
  for await (const ch of s) for (const c of ch.choices) acc[c.index] += c.delta.content ?? "";
  check("n=3 streamed", acc.every((t, i) => t === r.choices[i].message.content), acc);
}

// logprobs: the greedy token is the best alternative
{
  const r = await client.chat.completions.create({ model: "m", messages: user, temperature: 0, max_tokens: 5, logprobs: true, top_logprobs: 3 });
  const lp = r.choices[0].logprobs?.content ?? [];
  check("logprobs: one per token", lp.length === 5, lp.length);
  check("logprobs: greedy = best", lp.every(e => e.top_logprobs.length === 3 && e.top_logprobs[0].token === e.token && Math.abs(e.top_logprobs[0].logprob - e.logprob) < 1e-6 && e.logprob <= 0), lp[0]);
  check("logprobs: tokens spell the content", lp.map(e => e.token).join("") === r.choices[0].message.content, r.choices[0].message.content);
}

// models, errors
{
  const models = await client.models.list();
  check("models", models.data.length === 1 && models.data[0].object === "model", models.data);
  for (const [name, body, status] of [["wrong type", { messages: user, temperature: "hot" }, 400], ["bad budget", { messages: user, max_thinking_tokens: -1 }, 400],
                                      ["no messages", { messages: [] }, 400], ["n too big", { messages: user, n: 1000 }, 400],
                                      ["context", { messages: user, max_tokens: 1 << 20 }, 400], ["bad role", { messages: [{ role: "robot", content: "x" }] }, 400]]) {
    try {
      await client.chat.completions.create({ model: "m", ...body });
      check(`error ${name}`, false, "no error");
    } catch (e) {
      check(`error ${name}`, e.status === status && typeof e.error?.message === "string" && e.error.type === "invalid_request_error", [e.status, e.error]);
    }
  }
  const bad = new OpenAI({ baseURL: `${process.env.BASE_URL}/v1`, apiKey: "wrong", maxRetries: 0 });
  try { await bad.models.list(); check("401", false, "no error"); } catch (e) { check("401", e.status === 401, e.status); }
}

console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
