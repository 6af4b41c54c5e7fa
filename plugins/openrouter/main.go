// Command pgrules-provider-openrouter is the OpenRouter teacher: chat
// completions with an ordered list of fallback models, routing options and
// the cost OpenRouter reports. The key comes from OPENROUTER_API_KEY.
package main

import (
	"github.com/pgrules/pgrules/providers"
	"github.com/pgrules/pgrules/providers/openai"
)

func main() {
	providers.Serve(openai.New(openai.Defaults{
		Name:        "openrouter",
		BaseURL:     "https://openrouter.ai/api/v1",
		APIKeyEnv:   "OPENROUTER_API_KEY",
		KeyRequired: true,
	}))
}
