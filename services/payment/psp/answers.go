package psp

import (
	"encoding/json"
	"errors"
	"net/http"
)

// The answers of the API: JSON bodies, errors as Stripe shapes them.

// apiError is the "error" object of an error answer.
type apiError struct {
	Type          string  `json:"type"` // api_error, card_error, idempotency_error, invalid_request_error
	Code          string  `json:"code,omitempty"`
	DeclineCode   string  `json:"decline_code,omitempty"`
	Message       string  `json:"message"`
	Param         string  `json:"param,omitempty"`
	PaymentIntent *Intent `json:"payment_intent,omitempty"`
}

type errorBody struct {
	Error apiError `json:"error"`
}

func paramAPIError(err error) apiError {
	var pe *paramError
	if errors.As(err, &pe) {
		return apiError{Type: "invalid_request_error", Code: pe.Code, Param: pe.Param, Message: pe.Msg}
	}
	return apiError{Type: "invalid_request_error", Message: err.Error()}
}

// badParams is the outcome of a request refused before it began.
func badParams(err error) outcome {
	return outcome{status: http.StatusBadRequest, body: errorBody{paramAPIError(err)}, noStore: true}
}

func faultAnswer(when string) outcome {
	return outcome{status: http.StatusInternalServerError, body: errorBody{apiError{Type: "api_error",
		Message: "An error occurred with our connection to the simulator (injected " + when + " the operation)."}}}
}

func writeError(w http.ResponseWriter, status int, e apiError) {
	writeJSON(w, status, errorBody{e})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":{"type":"api_error","message":"encoding the answer failed"}}`)
	}
	writeRaw(w, status, b)
}

func writeRaw(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(body)
	_, _ = w.Write([]byte{'\n'})
}
