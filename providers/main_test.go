package providers

import (
	"os"
	"testing"

	"github.com/pgrules/pgrules/providers/plugintest"
)

func TestMain(m *testing.M) { os.Exit(plugintest.Main(m)) }
