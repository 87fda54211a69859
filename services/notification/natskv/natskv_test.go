package natskv_test

import (
	"context"
	"testing"

	"github.com/ticketing/ticketing/core/node/nodetest"
	"github.com/ticketing/ticketing/services/notification"
	"github.com/ticketing/ticketing/services/notification/natskv"
	"github.com/ticketing/ticketing/services/notification/notificationtest"
)

func TestContract(t *testing.T) {
	_, _, js := nodetest.Start(t)
	l, err := natskv.Open(context.Background(), js, natskv.Config{})
	if err != nil {
		t.Fatal(err)
	}
	notificationtest.Run(t, func(*testing.T) notification.Ledger { return l })
}
