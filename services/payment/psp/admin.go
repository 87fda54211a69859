package psp

import "net/http"

// The /_sim endpoints, for tests and people: GET /_sim/records (every
// intent and refund), GET and POST /_sim/faults (the faults in force, as
// DecodeFaults reads them). They take the secret key as the API does.

// admin wraps a /_sim handler: the secret key, and the metrics.
func (s *Server) admin(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !s.authorized(r) {
			writeError(w, http.StatusUnauthorized, apiError{Type: "invalid_request_error", Code: "api_key_invalid", Message: "Invalid API Key provided."})
			return
		}
		h(w, r)
	}
}

func (s *Server) getRecords(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.Records())
}

func (s *Server) getFaults(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.Faults())
}

func (s *Server) postFaults(w http.ResponseWriter, r *http.Request) {
	f, err := DecodeFaults(http.MaxBytesReader(w, r.Body, s.cfg.MaxBody))
	if err != nil {
		writeError(w, http.StatusBadRequest, apiError{Type: "invalid_request_error", Code: "parameter_invalid", Message: err.Error()})
		return
	}
	_ = s.SetFaults(f)
	writeJSON(w, http.StatusOK, s.Faults())
}
