// Command pgrules-provider-local is the teacher on a local OpenAI-compatible
// server: Ollama, llama.cpp server, vLLM or LM Studio. No key is needed;
// set api_key_env if the server wants one.
package main

import (
	"github.com/pgrules/pgrules/providers"
	"github.com/pgrules/pgrules/providers/openai"
)

func main() {
	providers.Serve(openai.New(openai.Defaults{
		Name:    "local",
		BaseURL: "http://127.0.0.1:11434/v1",
	}))
}
