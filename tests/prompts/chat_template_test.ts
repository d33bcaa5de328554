import assert from "node:assert/strict";
import { buildLayer1Prompt, CHATML_TEMPLATE, renderChat } from "../../prompts/chat_template.ts";
import {
  GUIDE_PHRASES,
  SHORT_GUIDE_PHRASES,
  SHORT_SYSTEM_PROMPT,
  TABLE1_SYSTEM_PROMPT,
} from "../../prompts/system_prompts.ts";

// The paper's Table 1, verbatim (arXiv 2506.04746).
const TABLE1_BLOCK = `<|im_start|>system
You are a helpful AI assistant. A conversation between User and Assistant.
The User asks a mathematical question, and the Assistant solves it step-by-step.
The Assistant must first output a detailed step-by-step reasoning process enclosed within
<think></think> tags. After the </think> tag, the Assistant must provide the final answer
based on the reasoning.
<|im_end|>
<|im_start|>user
[Original Problem Prompt]
<|im_end|>
<|im_start|>assistant
`;

Deno.test("buildLayer1Prompt() renders the paper's Table 1 block byte for byte", () => {
  // Table 1 shows a line break before each <|im_end|>: it is part of the
  // system prompt constant, and of the placeholder question here.
  const text = buildLayer1Prompt("[Original Problem Prompt]\n", {
    systemPrompt: TABLE1_SYSTEM_PROMPT,
  });
  assert.equal(text, TABLE1_BLOCK);
  // The system prompt is the default.
  assert.equal(buildLayer1Prompt("[Original Problem Prompt]\n"), TABLE1_BLOCK);
});

Deno.test("buildLayer1Prompt() renders a short prompt and can leave the system turn out", () => {
  assert.equal(
    buildLayer1Prompt("Ann has 7 pens. How many pens now?", { systemPrompt: SHORT_SYSTEM_PROMPT }),
    "<|im_start|>system\nThink in <think></think>, then answer.<|im_end|>\n" +
      "<|im_start|>user\nAnn has 7 pens. How many pens now?<|im_end|>\n<|im_start|>assistant\n",
  );
  assert.equal(
    buildLayer1Prompt("1+1?", { systemPrompt: null }),
    "<|im_start|>user\n1+1?<|im_end|>\n<|im_start|>assistant\n",
  );
});

Deno.test("renderChat() renders ChatML without injecting a system prompt", () => {
  const text = renderChat([
    { role: "user", content: "Hi" },
    { role: "assistant", content: "Hello" },
  ]);
  assert.equal(text, "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello<|im_end|>\n");
});

Deno.test("renderChat() leaves the final assistant message open with continueFinalMessage", () => {
  const messages = [
    { role: "system" as const, content: "S" },
    { role: "user" as const, content: "Q" },
    { role: "assistant" as const, content: "<think>1+1=3</think>3 Wait, let me check." },
  ];
  assert.equal(
    renderChat(messages, { continueFinalMessage: true }),
    "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nQ<|im_end|>\n" +
      "<|im_start|>assistant\n<think>1+1=3</think>3 Wait, let me check.",
  );
  // Content repeated from an earlier turn, and empty content, still cut at the right place.
  assert.equal(
    renderChat([{ role: "user", content: "x" }, { role: "assistant", content: "x" }], {
      continueFinalMessage: true,
    }),
    "<|im_start|>user\nx<|im_end|>\n<|im_start|>assistant\nx",
  );
  assert.equal(
    renderChat([{ role: "user", content: "x" }, { role: "assistant", content: "" }], {
      continueFinalMessage: true,
    }),
    "<|im_start|>user\nx<|im_end|>\n<|im_start|>assistant\n",
  );
});

Deno.test("renderChat() uses a custom template", () => {
  const template = "{% for m in messages %}[{{ m.role }}]{{ m.content }}{% endfor %}" +
    "{% if add_generation_prompt %}[assistant]{% endif %}";
  assert.equal(
    renderChat([{ role: "user", content: "a" }], { template, addGenerationPrompt: true }),
    "[user]a[assistant]",
  );
  assert.equal(
    buildLayer1Prompt("q", { systemPrompt: "s", template }),
    "[system]s[user]q[assistant]",
  );
});

Deno.test("renderChat() passes variables to the template as apply_chat_template's kwargs", () => {
  const template = "{{ bos_token }}{{ messages[0].content }}" +
    "{% if enable_thinking is defined and enable_thinking is false %}[no think]{% endif %}";
  const messages = [{ role: "user" as const, content: "a" }];
  assert.equal(renderChat(messages, { template }), "a");
  assert.equal(
    renderChat(messages, {
      template,
      specialTokens: { bos_token: "<s>" },
      variables: { enable_thinking: false, bos_token: "<b>" },
    }),
    "<b>a[no think]",
  );
  assert.throws(
    () => renderChat(messages, { template, variables: { messages: [] } }),
    /options\.variables must not set "messages": current value is \[\]/,
  );
  assert.throws(
    () => renderChat(messages, { template, variables: { add_generation_prompt: true } }),
    RangeError,
  );
});

Deno.test("renderChat() rejects invalid requests", () => {
  assert.throws(() => renderChat([]), RangeError);
  assert.throws(
    () => renderChat([{ role: "tool" as "user", content: "x" }]),
    /messages\[0\]\.role must be "system", "user" or "assistant": current value is "tool"/,
  );
  assert.throws(
    () => renderChat([{ role: "user", content: "x" }], { continueFinalMessage: true }),
    /needs a final assistant message/,
  );
  assert.throws(
    () =>
      renderChat([{ role: "assistant", content: "x" }], {
        continueFinalMessage: true,
        addGenerationPrompt: true,
      }),
    RangeError,
  );
  assert.throws(
    () => renderChat([{ role: "user", content: "x" }], { template: "{% if %}" }),
    SyntaxError,
  );
});

// Qwen2.5-Instruct's chat template with its tool branches removed.
const QWEN25_TOOL_FREE = [
  "{%- if messages[0]['role'] == 'system' %}",
  "    {{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}",
  "{%- else %}",
  "    {{- '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\\n' }}",
  "{%- endif %}",
  "{%- for message in messages %}",
  '    {%- if (message.role == "user") or (message.role == "system" and not loop.first) or (message.role == "assistant" and not message.tool_calls) %}',
  "        {{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}",
  "    {%- endif %}",
  "{%- endfor %}",
  "{%- if add_generation_prompt %}",
  "    {{- '<|im_start|>assistant\\n' }}",
  "{%- endif %}",
].join("\n");

Deno.test("renderChat() matches Qwen2.5's template when a system message is given", () => {
  const chat = [
    { role: "system" as const, content: TABLE1_SYSTEM_PROMPT },
    { role: "user" as const, content: "Ann has 7 pens. She buys 5. How many pens now?" },
    { role: "assistant" as const, content: "<think>7+5=12</think>12" },
    { role: "user" as const, content: "Sure?" },
  ];
  for (const addGenerationPrompt of [false, true]) {
    assert.equal(
      renderChat(chat, { addGenerationPrompt }),
      renderChat(chat, { template: QWEN25_TOOL_FREE, addGenerationPrompt }),
    );
  }
  // Without a system message Qwen2.5 injects its default; CHATML_TEMPLATE does not.
  const userOnly = [{ role: "user" as const, content: "q" }];
  assert.ok(renderChat(userOnly, { template: QWEN25_TOOL_FREE }).includes("You are Qwen"));
  assert.equal(renderChat(userOnly), "<|im_start|>user\nq<|im_end|>\n");
});

Deno.test("CHATML_TEMPLATE is a Jinja ChatML template in Qwen2.5's form", () => {
  assert.ok(
    CHATML_TEMPLATE.includes("'<|im_start|>' + message['role'] + '\\n' + message['content']"),
  );
  assert.ok(CHATML_TEMPLATE.includes("{%- if add_generation_prompt %}"));
  assert.ok(!CHATML_TEMPLATE.includes("You are Qwen"));
});

Deno.test("GUIDE_PHRASES holds the paper's seven phrases", () => {
  assert.equal(GUIDE_PHRASES.length, 7);
  assert.equal(
    GUIDE_PHRASES[0],
    "Where might I have gone wrong this time? Let me double-check carefully.",
  );
  assert.equal(GUIDE_PHRASES[5], "Another thought: maybe I can");
  assert.equal(
    GUIDE_PHRASES[6],
    "But wait, let me just make sure I didn't miss anything in the original problem.",
  );
  assert.ok(SHORT_GUIDE_PHRASES.every((p) => p.length <= 20));
  assert.ok(TABLE1_SYSTEM_PROMPT.endsWith("based on the reasoning.\n"));
  assert.equal(TABLE1_SYSTEM_PROMPT.split("\n").length, 6);
});
