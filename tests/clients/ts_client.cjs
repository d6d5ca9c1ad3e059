// A small TypeScript-SDK client (@anthropic-ai/sdk, loaded from SDK_DIR): sends one message
// through ANTHROPIC_BASE_URL and prints what the SDK made of the answer, as one JSON line.
const Anthropic = require(process.env.SDK_DIR).default;

async function main() {
  const client = new Anthropic({ maxRetries: 0 });
  const [model, prompt] = process.argv.slice(2);
  try {
    const message = await client.messages.create({
      model,
      max_tokens: 20000,
      messages: [{ role: "user", content: prompt }],
      stream: false,
    });
    console.log(JSON.stringify({ ok: true, text: message.content[0].text }));
  } catch (err) {
    console.log(
      JSON.stringify({
        ok: false,
        class: err.constructor.name,
        status: err.status,
        type: err.error && err.error.error && err.error.error.type,
        message: err.message,
      }),
    );
  }
}

main();
