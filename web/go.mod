// The storefront is not Go. This file makes web/ a module of its own, so that `./...` in the
// cartflow module never walks into web/node_modules, where some npm packages ship .go files.
module github.com/cartflow/cartflow/web

go 1.26
