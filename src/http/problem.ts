import Type from 'typebox';
import type { GantryError } from '../errors/gantry-error.ts';
import type { FieldProblem } from '../schema/validate.ts';

/** The media type of every error answer. */
export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

/** An RFC 9457 problem document, with the request id and, for validation errors, every failing field. */
export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  instance: string;
  code: string;
  requestId: string;
  errors?: FieldProblem[];
}

/** The schema of {@link Problem}, shared by every error response in the OpenAPI document. */
export const ProblemSchema = Type.Object(
  {
    type: Type.String({ description: 'A URI naming the kind of problem: urn:gantry:error:<code>' }),
    title: Type.String(),
    status: Type.Integer(),
    detail: Type.String(),
    instance: Type.String({ description: 'The request path' }),
    code: Type.String({ description: 'A stable Gantry error code, see docs/errors.md' }),
    requestId: Type.String(),
    errors: Type.Optional(
      Type.Array(
        Type.Object({
          path: Type.String({ description: 'JSON pointer to the failing field' }),
          message: Type.String(),
        }),
      ),
    ),
  },
  { $id: 'Problem' },
);

/** Builds the problem answer for an error. Internal errors keep their message out of the answer. */
export function toProblem(error: GantryError, title: string, requestId: string, instance: string): Problem {
  const internal = error.status >= 500 && error.code === 'GANTRY_ERR_INTERNAL';
  const problem: Problem = {
    type: `urn:gantry:error:${error.code}`,
    title,
    status: error.status,
    detail: internal ? `an internal error occurred; quote request id ${requestId} when reporting it` : error.message,
    instance,
    code: error.code,
    requestId,
  };
  if (Array.isArray(error.details) && error.code === 'GANTRY_ERR_HTTP_VALIDATION') {
    problem.errors = error.details as FieldProblem[];
  }
  return problem;
}
