package test

import (
	"testing"

	"github.com/kmsdns/kmsdns/test/harness"
)

func TestMain(m *testing.M) { harness.Main(m) }
