// Package services groups the domain services, one package per service.
// Domain packages are free of transport and storage imports; adapters live in
// sub-packages named for what they adapt to (services/orders/postgres, …).
package services
