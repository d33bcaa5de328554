// Goldens: tests/fixtures/chat_templates/rendered.json, written by tools/tokenizer_golden.py with
// transformers' apply_chat_template(..., tokenize=False) on the real chat templates of
// tests/fixtures/chat_templates/*.json (sources in SOURCES.md there).
import assert from "node:assert/strict";
import {
  type ChatMessage,
  chatTemplateFromConfig,
  loadChatTemplate,
  renderChat,
} from "../../prompts/chat_template.ts";
import { GUIDE_PHRASES, TABLE1_SYSTEM_PROMPT } from "../../prompts/system_prompts.ts";

const FIXTURES = new URL("../fixtures/chat_templates/", import.meta.url).pathname;
const TINY_QWEN2 = new URL("../fixtures/tokenizers/tiny-qwen2", import.meta.url).pathname;

interface Conversation {
  messages: ChatMessage[];
  add_generation_prompt: boolean;
  continue_final_message?: boolean;
}

interface Rendered {
  templates: Record<
    string,
    { special_tokens: Record<string, string>; rendered: Record<string, string> }
  >;
  conversations: Record<string, Conversation>;
}

const rendered: Rendered = JSON.parse(Deno.readTextFileSync(`${FIXTURES}rendered.json`));
const MODELS = ["qwen2.5-0.5b-instruct", "qwen2.5-math-7b-instruct", "deepseek-r1-distill-qwen"];

function fixture(model: string): Record<string, unknown> {
  return JSON.parse(Deno.readTextFileSync(`${FIXTURES}${model}.json`));
}

async function withDir(
  files: Record<string, string>,
  fn: (dir: string) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "mgrpo-chat-template-" });
  try {
    for (const [name, text] of Object.entries(files)) {
      const path = `${dir}/${name}`;
      await Deno.mkdir(path.slice(0, path.lastIndexOf("/")), { recursive: true });
      await Deno.writeTextFile(path, text);
    }
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("renderChat() renders the three real templates exactly as transformers does", () => {
  assert.deepEqual(Object.keys(rendered.templates).sort(), [...MODELS].sort());
  let compared = 0;
  for (const model of MODELS) {
    const template = chatTemplateFromConfig(fixture(model), { source: `${model}.json` });
    const golden = rendered.templates[model]!;
    assert.deepEqual(template.specialTokens, golden.special_tokens, model);
    for (const [name, conv] of Object.entries(rendered.conversations)) {
      const got = renderChat(conv.messages, {
        template,
        addGenerationPrompt: conv.add_generation_prompt,
        continueFinalMessage: conv.continue_final_message ?? false,
      });
      assert.equal(got, golden.rendered[name], `${model} / ${name}`);
      compared++;
    }
  }
  assert.equal(compared, 3 * 5);
});

Deno.test("renderChat() golden conversations: a Layer-1 prompt and a multi-turn follow-up with a guide phrase", () => {
  // The "layer2" golden is the guide phrase as a user turn after the answer, rendered through the
  // template as transformers does. It is not the q'_i mgrpo builds: buildLayer2Prompt appends o_i
  // verbatim after the generation prompt, because templates like DeepSeek-R1-Distill's drop the
  // reasoning of earlier answers, as this golden shows (tests/algorithms/mgrpo/mgrpo_test.ts).
  const layer2 = rendered.conversations.layer2!;
  assert.equal(layer2.messages[0]!.content, TABLE1_SYSTEM_PROMPT);
  assert.equal(layer2.messages.at(-1)!.content, GUIDE_PHRASES[0]);
  const qwen = rendered.templates["qwen2.5-0.5b-instruct"]!.rendered;
  assert.ok(qwen.layer2!.endsWith(
    `<|im_start|>user\n${GUIDE_PHRASES[0]}<|im_end|>\n<|im_start|>assistant\n`,
  ));
  // Qwen2.5 injects its default system prompt; Qwen2.5-Math its own.
  assert.ok(
    qwen.layer1_no_system!.startsWith("<|im_start|>system\nYou are Qwen, created by Alibaba"),
  );
  assert.ok(
    rendered.templates["qwen2.5-math-7b-instruct"]!.rendered.layer1_no_system!.startsWith(
      "<|im_start|>system\nPlease reason step by step, and put your final answer within \\boxed{}.",
    ),
  );
  // DeepSeek-R1-Distill starts with bos_token and drops the reasoning of earlier answers.
  const deepseek = rendered.templates["deepseek-r1-distill-qwen"]!.rendered.layer2!;
  assert.ok(deepseek.startsWith("<｜begin▁of▁sentence｜>You are a helpful AI assistant."));
  assert.ok(!deepseek.includes("48 / 2 = 24"));
  assert.ok(deepseek.endsWith(`<｜User｜>${GUIDE_PHRASES[0]}<｜Assistant｜>`));
});

Deno.test("renderChat() without the template's special tokens differs from transformers", () => {
  // The goldens are not satisfiable by any renderer that ignores bos_token.
  const template = chatTemplateFromConfig(fixture("deepseek-r1-distill-qwen"));
  const conv = rendered.conversations.layer1!;
  const golden = rendered.templates["deepseek-r1-distill-qwen"]!.rendered.layer1!;
  const without = renderChat(conv.messages, {
    template: template.template,
    addGenerationPrompt: true,
  });
  assert.notEqual(without, golden);
  assert.equal("<｜begin▁of▁sentence｜>" + without, golden);
  const explicit = renderChat(conv.messages, {
    template: template.template,
    specialTokens: { bos_token: "<｜begin▁of▁sentence｜>" },
    addGenerationPrompt: true,
  });
  assert.equal(explicit, golden);
});

Deno.test("loadChatTemplate() reads the chat_template of tokenizer_config.json", async () => {
  const template = await loadChatTemplate(TINY_QWEN2);
  assert.equal(template.name, "default");
  assert.equal(template.source, `${TINY_QWEN2}/tokenizer_config.json`);
  assert.equal(template.template, fixture("qwen2.5-0.5b-instruct").chat_template);
  assert.deepEqual(template.specialTokens, { eos_token: "<|im_end|>", pad_token: "<|endoftext|>" });
  const conv = rendered.conversations.layer2!;
  assert.equal(
    renderChat(conv.messages, { template, addGenerationPrompt: true }),
    rendered.templates["qwen2.5-0.5b-instruct"]!.rendered.layer2,
  );
});

Deno.test("loadChatTemplate() prefers chat_template.jinja and reads additional_chat_templates", async () => {
  const config = JSON.stringify({
    bos_token: "<s>",
    chat_template: "from the config",
  });
  await withDir({
    "tokenizer_config.json": config,
    "chat_template.jinja": "{{ bos_token }}{% for m in messages %}{{ m.content }}{% endfor %}",
    "additional_chat_templates/tool_use.jinja": "tools: {{ messages | length }}",
  }, async (dir) => {
    const main = await loadChatTemplate(dir);
    assert.equal(main.name, "default");
    assert.equal(main.source, `${dir}/chat_template.jinja`);
    assert.equal(renderChat([{ role: "user", content: "hi" }], { template: main }), "<s>hi");
    const tools = await loadChatTemplate(dir, { name: "tool_use" });
    assert.equal(tools.source, `${dir}/additional_chat_templates/tool_use.jinja`);
    assert.equal(renderChat([{ role: "user", content: "hi" }], { template: tools }), "tools: 1");
    await assert.rejects(loadChatTemplate(dir, { name: "rag" }), {
      name: "RangeError",
      message:
        `Cannot load chat template "${dir}": no template is named "rag": current value is one of ["default","tool_use"]`,
    });
  });
  // A chat_template.jinja with no tokenizer_config.json at all.
  await withDir({ "chat_template.jinja": "x" }, async (dir) => {
    const t = await loadChatTemplate(dir);
    assert.equal(t.template, "x");
    assert.deepEqual(t.specialTokens, {});
  });
});

Deno.test("chatTemplateFromConfig() picks a template from the list form by name", () => {
  const config = {
    eos_token: "</s>",
    chat_template: [
      { name: "default", template: "D{{ eos_token }}" },
      { name: "rag", template: "R{{ eos_token }}" },
    ],
  };
  const msgs: ChatMessage[] = [{ role: "user", content: "q" }];
  assert.equal(renderChat(msgs, { template: chatTemplateFromConfig(config) }), "D</s>");
  const rag = chatTemplateFromConfig(config, { name: "rag" });
  assert.equal(rag.name, "rag");
  assert.equal(renderChat(msgs, { template: rag }), "R</s>");
  assert.throws(
    () =>
      chatTemplateFromConfig({
        chat_template: [{ name: "a", template: "A" }, {
          name: "b",
          template: "B",
        }],
      }),
    {
      name: "RangeError",
      message:
        'Cannot load chat template "tokenizer_config.json": the checkpoint has several templates and none is named "default"; pass options.name: current value is one of ["a","b"]',
    },
  );
});

Deno.test("chatTemplateFromConfig() names the file and field that are wrong", () => {
  assert.throws(() => chatTemplateFromConfig({}, { source: "ckpt/tokenizer_config.json" }), {
    name: "RangeError",
    message:
      'Cannot load chat template "ckpt/tokenizer_config.json": the checkpoint has no chat template: field "chat_template" is missing and there is no chat_template.jinja: current value is undefined',
  });
  assert.throws(() => chatTemplateFromConfig({ chat_template: 3 }), {
    name: "TypeError",
    message:
      'Cannot load chat template "tokenizer_config.json": field "chat_template" must be a string or a list of { name, template }: current value is 3',
  });
  assert.throws(() => chatTemplateFromConfig({ chat_template: [{ name: "x" }] }), {
    name: "TypeError",
    message:
      'Cannot load chat template "tokenizer_config.json": field "chat_template[0]" must be an object with string "name" and "template": current value is {"name":"x"}',
  });
  assert.throws(() => chatTemplateFromConfig({ chat_template: "x", bos_token: 1 }), {
    name: "TypeError",
    message:
      'Cannot load chat template "tokenizer_config.json": field "bos_token" must be a string or an object with a string "content": current value is 1',
  });
});

Deno.test("loadChatTemplate() names a directory without a template", async () => {
  await withDir({}, async (dir) => {
    await assert.rejects(loadChatTemplate(dir), {
      name: "RangeError",
      message:
        `Cannot load chat template "${dir}": the directory has no chat_template.jinja and no tokenizer_config.json: current value is "${dir}"`,
    });
  });
  await withDir({ "tokenizer_config.json": "{oops" }, async (dir) => {
    await assert.rejects(loadChatTemplate(dir), {
      name: "SyntaxError",
      message: new RegExp(
        `^Cannot load chat template "${dir}/tokenizer_config\\.json": the file is not valid JSON`,
      ),
    });
  });
});

Deno.test("renderChat() reports an error the template raises", () => {
  assert.throws(
    () =>
      renderChat([{ role: "user", content: "x" }], {
        template: "{{ raise_exception('only assistant turns') }}",
      }),
    { message: "Cannot render chat: the template failed: only assistant turns" },
  );
});
