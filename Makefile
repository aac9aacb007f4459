# Shortcuts for the commands in scripts/ (the scripts are the real thing; each target only calls one).
.PHONY: setup run test train validate spacy production

setup:        ## environments, the spaCy pipeline, the databases
	bash scripts/setup.sh
run:          ## the whole system on this machine (trains first if the data changed)
	bash scripts/run.sh
test:         ## every test suite
	bash scripts/test.sh
train:        ## train the model if config, domain or data changed
	bash scripts/train.sh
validate:     ## config.yml consistency, then Rasa's own data validation
	.venv/bin/python scripts/check_config.py
	.venv/bin/rasa data validate --fail-on-warnings
spacy:        ## rebuild build/spacy after editing nlp/entity_patterns.yml
	.venv/bin/python scripts/build_spacy_pipeline.py
production:   ## check the production settings and start the production profile
	bash scripts/production.sh
